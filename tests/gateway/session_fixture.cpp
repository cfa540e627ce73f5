#include "tests/gateway/session_fixture.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <future>
#include <stdexcept>

#include "common/clock.h"
#include "common/crypto.h"
#include "gateway/identity_keys.h"
#include "gateway/known_hosts.h"
#include "gateway/policy.h"
#include "gateway/resolver.h"
#include "gateway/session.h"
#include "gateway/signer_protocol.h"
#include "gateway/ssh_keys.h"
#include "gateway/ssh_messages.h"
#include "gateway/targets.h"

namespace castgate::testing {

namespace {

constexpr auto kRigLoopWait = std::chrono::seconds(10);
constexpr int kRigPollMillis = 5;

ssh::Key generate_rig_key() {
  ssh_key raw = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK || !raw)
    throw std::runtime_error("cannot generate a key");
  return ssh::Key(raw);
}

std::string rig_public_base64(ssh_key key) {
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK || !b64)
    throw std::runtime_error("cannot export a public key");
  ssh::CharPtr owner(b64);
  return b64;
}

}  // namespace

InProcessSigner::InProcessSigner()
    : signer_(nullptr, Ed25519PrivateKey::from_seed(std::string(32, 's')).value(), signer::Limits{},
              nullptr, SystemClock::instance()) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::runtime_error("socketpair failed");
  served_.reset(sv[1]);
  client_ = SignerClient::adopt(sv[0], "", signer_.recording_public_key());
  thread_ = std::thread([this] {
    std::string in;
    while (!stop_.load()) {
      pollfd p{served_.get(), POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      in.resize(signer::kMaxMessage + 1);
      signer::Received got = signer::receive_packet(served_.get(), in, 0);
      if (got.size <= 0) return;  // the client is gone
      std::string answer =
          signer_.handle(std::string_view(in.data(), static_cast<size_t>(got.size)));
      signer::send_packet(served_.get(), answer, -1, 0);
    }
  });
}

InProcessSigner::~InProcessSigner() {
  stop_.store(true);
  thread_.join();
}

TestTarget::Connection::~Connection() {
  channel.reset();
  if (event && session) ssh_event_remove_session(event.get(), session.get());
  event.reset();
  session.reset();
}

TestTarget::TestTarget() {
  listener_.reset(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (!listener_ || ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener_.get(), 8) != 0 ||
      getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error("the target cannot listen on 127.0.0.1");
  port_ = ntohs(addr.sin_port);

  ssh::Key host_key = generate_rig_key();
  host_key_base64_ = rig_public_base64(host_key.get());
  bind_.reset(ssh_bind_new());
  if (!bind_) throw std::runtime_error("out of memory");
  int off = 0, verbosity = SSH_LOG_NOLOG;
  ssh_bind_options_set(bind_.get(), SSH_BIND_OPTIONS_PROCESS_CONFIG, &off);
  ssh_bind_options_set(bind_.get(), SSH_BIND_OPTIONS_LOG_VERBOSITY, &verbosity);
  if (ssh_bind_options_set(bind_.get(), SSH_BIND_OPTIONS_IMPORT_KEY, host_key.release()) != SSH_OK)
    throw std::runtime_error("libssh refused the target's host key");
}

std::string TestTarget::known_hosts_line() const {
  return KnownHosts::host_name_for("127.0.0.1", port_) + " ssh-ed25519 " + host_key_base64_ + "\n";
}

std::vector<int> TestTarget::fds() const {
  std::vector<int> out{listener_.get()};
  for (const auto& c : connections_)
    if (!c->gone && ssh_get_fd(c->session.get()) >= 0) out.push_back(ssh_get_fd(c->session.get()));
  return out;
}

void TestTarget::poll() {
  if (std::chrono::steady_clock::now() < paused_until_) return;
  for (;;) {
    int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) break;
    auto c = std::make_unique<Connection>();
    c->session.reset(ssh_new());
    REQUIRE(c->session);
    REQUIRE(ssh_bind_accept_fd(bind_.get(), c->session.get(), fd) == SSH_OK);
    ssh_set_blocking(c->session.get(), 0);
    ssh_set_auth_methods(c->session.get(), SSH_AUTH_METHOD_PUBLICKEY);
    connections_.push_back(std::move(c));
  }
  for (auto& c : connections_) {
    if (c->gone) continue;
    ssh_session s = c->session.get();
    if (!c->key_exchanged) {
      int rc = ssh_handle_key_exchange(s);
      if (rc == SSH_AGAIN) continue;
      if (rc != SSH_OK) {
        c->gone = true;  // the gateway refused its host key, or went away
        continue;
      }
      c->key_exchanged = true;
      c->event.reset(ssh_event_new());
      REQUIRE(ssh_event_add_session(c->event.get(), s) == SSH_OK);
    }
    for (int i = 0; i < 4; ++i) ssh_event_dopoll(c->event.get(), 0);
    while (ssh_message m_raw = ssh_message_get(s)) {
      ssh::Message m(m_raw);
      int type = ssh_message_type(m.get()), subtype = ssh_message_subtype(m.get());
      if (type == SSH_REQUEST_AUTH && subtype == SSH_AUTH_METHOD_PUBLICKEY && accepted_key_ &&
          ssh_key_cmp(ssh::auth_pubkey(m.get()), accepted_key_, SSH_KEY_CMP_PUBLIC) == 0) {
        if (ssh::auth_pubkey_state(m.get()) == SSH_PUBLICKEY_STATE_VALID) {
          ssh_message_auth_reply_success(m.get(), 0);
          c->signed_in = true;
        } else {
          ssh_message_auth_reply_pk_ok_simple(m.get());
        }
      } else if (type == SSH_REQUEST_CHANNEL_OPEN && subtype == SSH_CHANNEL_SESSION &&
                 c->signed_in && !c->channel) {
        ssh_channel ch = ssh_message_channel_request_open_reply_accept(m.get());
        REQUIRE(ch != nullptr);
        c->channel = std::make_unique<PeerChannel>(ssh::Channel(ch));
      } else if (type == SSH_REQUEST_CHANNEL && subtype == SSH_CHANNEL_REQUEST_EXEC) {
        const char* cmd = ssh_message_channel_request_command(m.get());
        c->commands.emplace_back(cmd ? cmd : "");
        ssh_message_channel_request_reply_success(m.get());
      } else {
        ssh_message_reply_default(m.get());
      }
    }
    // Answers the gateway's CLOSE with its own, as sshd does.
    if (c->channel && c->channel->closed && !c->channel->close_sent && ssh_is_connected(s))
      c->channel->close();
    if (!ssh_is_connected(s)) c->gone = true;
  }
}

void TestTarget::disconnect() {
  Connection* c = first();
  REQUIRE(c != nullptr);
  REQUIRE(ssh_get_fd(c->session.get()) >= 0);
  // Not ssh_disconnect(): it frees the session's channels under their PeerChannel. The socket
  // stays libssh's, closed when the session is freed.
  ::shutdown(ssh_get_fd(c->session.get()), SHUT_RDWR);
  c->gone = true;
}

SessionRig::SessionRig() : user_key(generate_rig_key()), upstream_key(generate_rig_key()) {
  context.config.instance = "gw-test";
  context.host_keys.push_back(generate_rig_key());
  context.sink = &sink;
  context.session_prefix = "sess-";
  context.signer = signer_.take_client();
  context.resolver = std::make_unique<Resolver>(1);
  context.identities = IdentityKeys::parse(
      "identity=\"alice\",kind=human ssh-ed25519 " + rig_public_base64(user_key.get()) + "\n",
      "test identities");
  Target web;
  web.name = "web1";
  web.host = "127.0.0.1";
  web.port = target.port();
  context.targets.add(web);
  context.policy = Policy::parse(
      R"({"rules": [{"name": "alice-web", "identities": ["alice"], "targets": ["web1"],
                     "logins": ["ubuntu"]}]})",
      "test policy");
  context.known_hosts = KnownHosts::parse(target.known_hosts_line(), "test known_hosts");
  context.static_keys.emplace("web1", ssh::copy_private_key(upstream_key.get()));
  target.accept_key(upstream_key.get());
}

SessionRig::~SessionRig() {
  user_channels.clear();
  if (user_event && user) ssh_event_remove_session(user_event.get(), user.get());
  user_event.reset();
  user.reset();
  if (worker) worker->stop_and_join();
  worker.reset();
}

void SessionRig::start_worker() {
  if (worker) return;
  worker = std::make_unique<Worker>(context, 0);
  worker->start();
}

std::string SessionRig::connect(const std::string& ssh_user) {
  start_worker();
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  user.reset(ssh_new());
  REQUIRE(user);
  ssh_session c = user.get();
  int off = 0, verbosity = SSH_LOG_NOLOG;
  ssh_options_set(c, SSH_OPTIONS_PROCESS_CONFIG, &off);  // never read ~/.ssh or /etc/ssh
  ssh_options_set(c, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
  ssh_options_set(c, SSH_OPTIONS_HOST, "castgate");
  ssh_options_set(c, SSH_OPTIONS_USER, ssh_user.c_str());
  socket_t fd = sv[0];
  ssh_options_set(c, SSH_OPTIONS_FD, &fd);  // the user's session owns it from here on
  ssh_set_blocking(c, 0);
  worker->adopt(sv[1], ListenSpec{"127.0.0.1", 2222, ""}, asciicast::Endpoint{"192.0.2.7", 50000});
  std::string id;
  until([&] {
    for (const auto& e : events())
      if (e["event"]["action"] == "connection.accepted")
        id = e["castgate"]["session"].get<std::string>();
    return !id.empty();
  });
  REQUIRE(!id.empty());
  return id;
}

void SessionRig::handshake() {
  REQUIRE(user_call([&] { return ssh_connect(user.get()); }) == SSH_OK);
  user_event.reset(ssh_event_new());
  REQUIRE(ssh_event_add_session(user_event.get(), user.get()) == SSH_OK);
}

int SessionRig::sign_in(ssh_key key) {
  ssh_key k = key ? key : user_key.get();
  int rc = SSH_AUTH_AGAIN;
  until([&] { return (rc = ssh_userauth_publickey(user.get(), nullptr, k)) != SSH_AUTH_AGAIN; });
  return rc;
}

int SessionRig::open_channel() {
  ssh_channel raw = ssh_channel_new(user.get());
  REQUIRE(raw != nullptr);
  user_channels.push_back(std::make_unique<PeerChannel>(ssh::Channel(raw)));
  PeerChannel& ch = *user_channels.back();
  return user_call([&] { return ssh_channel_open_session(ch.get()); });
}

int SessionRig::exec(PeerChannel& channel, const std::string& command) {
  return user_call([&] { return ssh_channel_request_exec(channel.get(), command.c_str()); });
}

void SessionRig::user_disconnect() {
  if (user_event) ssh_event_remove_session(user_event.get(), user.get());
  user_event.reset();
  REQUIRE(ssh_get_fd(user.get()) >= 0);
  // As TestTarget::disconnect(): the channels stay readable for the test's checks.
  ::shutdown(ssh_get_fd(user.get()), SHUT_RDWR);
}

void SessionRig::pump() {
  std::vector<pollfd> fds;
  if (user_event && ssh_get_fd(user.get()) >= 0)
    fds.push_back(pollfd{ssh_get_fd(user.get()), POLLIN, 0});
  for (int fd : target.fds()) fds.push_back(pollfd{fd, POLLIN, 0});
  ::poll(fds.data(), fds.size(), kRigPollMillis);
  if (user_event) {
    for (int i = 0; i < 4; ++i) ssh_event_dopoll(user_event.get(), 0);
    // Answers castgate's CLOSE with its own, as ssh does.
    for (auto& ch : user_channels)
      if (ch->closed && !ch->close_sent && ssh_is_connected(user.get())) ch->close();
  }
  target.poll();
}

bool SessionRig::until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  return pump_until([this] { pump(); }, done, timeout);
}

int SessionRig::user_call(const std::function<int()>& call) {
  int rc = SSH_AGAIN;
  until([&] { return (rc = call()) != SSH_AGAIN; });
  return rc;
}

void SessionRig::on_loop(const std::function<void()>& fn) {
  REQUIRE(worker);
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  worker->loop().post([fn, done] {
    fn();
    done->set_value();
  });
  REQUIRE(finished.wait_for(kRigLoopWait) == std::future_status::ready);
}

void SessionRig::tick_ahead(const std::string& id, std::chrono::seconds ahead) {
  on_loop([&] {
    worker->run_in_session(id, [&](Session& s) { s.tick(context.clock->steady_now() + ahead); });
  });
}

std::vector<nlohmann::json> SessionRig::events() {
  std::vector<nlohmann::json> out;
  auto read = [&] {
    for (const auto& line : sink.lines) out.push_back(nlohmann::json::parse(line));
  };
  if (worker)
    on_loop(read);  // the sink is the worker's
  else
    read();
  return out;
}

std::string SessionRig::actions() {
  std::string out;
  for (const auto& e : events()) {
    auto action = e["event"]["action"].get<std::string>();
    if (action.starts_with("asciicast.")) continue;
    out += (out.empty() ? "" : " ") + action;
  }
  return out;
}

int SessionRig::count(const std::string& action) {
  int n = 0;
  for (const auto& e : events()) n += e["event"]["action"] == action;
  return n;
}

nlohmann::json SessionRig::event(const std::string& action) {
  std::vector<nlohmann::json> found;
  for (auto& e : events())
    if (e["event"]["action"] == action) found.push_back(e);
  REQUIRE(found.size() == 1);
  return found.front();
}

bool SessionRig::until_ended() {
  return until([&] {
    return count("session.end") + count("connection.closed") > 0 && live_sessions() == 0;
  });
}

}  // namespace castgate::testing
