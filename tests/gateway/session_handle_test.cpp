// A session is reached later only through its handle (session_host.h): what is posted, deferred
// or timed for a session that has ended finds nothing and does nothing. A real Worker on its own
// loop thread, serving a real downstream session on one end of a socketpair; the other end stays
// silent, so the session waits in its SSH handshake until the test closes it.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/context.h"
#include "gateway/session.h"
#include "gateway/worker.h"
#include "tests/asciicast/memory_sink.h"

using namespace castgate;

namespace {

struct WorkerUnderTest {
  asciicast::testing::MemorySink sink;
  GatewayContext context;
  std::unique_ptr<Worker> worker;
  int client = -1;  // the user's end: never speaks

  WorkerUnderTest() {
    ssh_key key = nullptr;
    REQUIRE(ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) == SSH_OK);
    context.host_keys.emplace_back(key);
    context.sink = &sink;
    context.session_prefix = "handle-";
    worker = std::make_unique<Worker>(context, 0);
    worker->start();
  }
  ~WorkerUnderTest() {
    worker->stop_and_join();
    if (client >= 0) ::close(client);
  }

  // Runs `fn` on the worker's loop and waits for it: what it reads of the sink, it reads there.
  template <class Fn>
  auto on_loop(Fn fn) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    worker->loop().post([&task] { task(); });
    REQUIRE(result.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    return result.get();
  }

  // The session's events, as the sink has them now.
  std::vector<nlohmann::json> events() {
    return on_loop([this] {
      std::vector<nlohmann::json> out;
      for (const auto& line : sink.lines) out.push_back(nlohmann::json::parse(line));
      return out;
    });
  }

  // Hands the worker a connection and returns the id of its session.
  std::string connect() {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    client = sv[0];
    worker->adopt(sv[1], ListenSpec{"127.0.0.1", 22, ""}, asciicast::Endpoint{"192.0.2.7", 50000});
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < give_up) {
      for (const auto& e : events())
        if (e["event"]["action"] == "connection.accepted")
          return e["castgate"]["session"].get<std::string>();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("the worker started no session");
    return {};
  }

  int count(const std::string& action) {
    int n = 0;
    for (const auto& e : events()) n += e["event"]["action"] == action;
    return n;
  }
};

}  // namespace

TEST_CASE("session handle: a task posted to a live session runs on it; to an ended one, nothing") {
  WorkerUnderTest t;
  std::string id = t.connect();
  SessionRef ref{t.worker.get(), id};

  std::string seen;
  ref.post([&](Session& s) { seen = s.id(); });
  t.on_loop([] {});  // the post above ran before this
  CHECK(seen == id);

  ref.post([](Session& s) { s.close(asciicast::EndReason::kClosed, ""); });
  t.on_loop([] {});
  CHECK(t.count("connection.closed") == 1);
  CHECK(t.worker->live_sessions() == 0);

  int ran = 0;
  ref.post([&](Session&) { ++ran; });
  t.on_loop([&] {
    ref.defer([&](Session&) { ++ran; });
    ref.after(std::chrono::milliseconds(0), [&](Session&) { ++ran; });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  t.on_loop([] {});
  CHECK(ran == 0);
}

TEST_CASE("session handle: work deferred behind a session's last step does nothing") {
  WorkerUnderTest t;
  std::string id = t.connect();
  SessionRef ref{t.worker.get(), id};

  int ran = 0;
  t.on_loop([&] {
    t.worker->run_in_session(id, [&](Session& s) {
      // close() asks for a step at the end of this pass, which ends the session (its last event
      // written) before the work deferred after it runs: the session is closed, not yet dropped.
      s.close(asciicast::EndReason::kClosed, "");
      s.request_step();  // asked for already: no second step
      ref.defer([&](Session&) { ++ran; });
    });
  });
  t.on_loop([] {});
  CHECK(ran == 0);
  CHECK(t.count("connection.closed") == 1);
  CHECK(t.worker->live_sessions() == 0);
}
