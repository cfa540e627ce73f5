#include "asciicast/stdout_writer.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/session_table.h"

using namespace castgate::asciicast;

namespace {
// A file the writer writes to, read back whole.
struct TempFile {
  std::string path;
  int fd = -1;
  TempFile() {
    char name[] = "/tmp/castgate-writer-test-XXXXXX";
    fd = mkstemp(name);
    path = name;
  }
  ~TempFile() {
    close(fd);
    unlink(path.c_str());
  }
  std::string read_all() const {
    std::string out(static_cast<size_t>(lseek(fd, 0, SEEK_END)), '\0');
    CHECK(pread(fd, out.data(), out.size(), 0) == static_cast<ssize_t>(out.size()));
    return out;
  }
};
}  // namespace

TEST_CASE("the writer writes every line whole and in order, gathered into few writes") {
  TempFile file;
  StdoutWriter::Options opts;
  opts.fd = file.fd;
  opts.batch_bytes = 4096;
  std::string expected;
  {
    StdoutWriter writer(opts);
    auto backlog = std::make_shared<Backlog>(SIZE_MAX);
    std::string hash(64, 'a');
    for (uint64_t i = 0; i < 2000; ++i) {
      std::string line = "line " + std::to_string(i) + " " + std::string(i % 300, 'x');
      writer.submit(line, ChainPoint{i, hash, false}, backlog);
      expected += line + "\n";
    }
    CHECK(writer.drain(std::chrono::seconds(10)));
    CHECK(writer.lines_written() == 2000);
    CHECK(writer.bytes_written() == expected.size());
    CHECK(backlog->pending() == 0);
  }
  CHECK(file.read_all() == expected);
}

TEST_CASE("a line waiting to gather others is written at once when someone drains") {
  TempFile file;
  StdoutWriter::Options opts;
  opts.fd = file.fd;
  opts.gather_delay = std::chrono::seconds(30);  // would outlast the test
  StdoutWriter writer(opts);
  auto backlog = std::make_shared<Backlog>(SIZE_MAX);
  std::string hash(64, 'b');
  writer.submit("one", ChainPoint{0, hash, false}, backlog);
  auto t0 = std::chrono::steady_clock::now();
  CHECK(writer.drain(std::chrono::seconds(10)));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  CHECK(file.read_all() == "one\n");
}

TEST_CASE("lines from several threads all arrive, each whole") {
  TempFile file;
  StdoutWriter::Options opts;
  opts.fd = file.fd;
  {
    StdoutWriter writer(opts);
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&writer, t] {
        auto backlog = std::make_shared<Backlog>(SIZE_MAX);
        std::string hash(64, 'c');
        for (uint64_t i = 0; i < 500; ++i) {
          std::string line = std::to_string(t) + ":" + std::to_string(i) + std::string(100, 'y');
          writer.submit(line, ChainPoint{i, hash, false}, backlog);
        }
      });
    }
    for (auto& th : threads) th.join();
  }  // the destructor writes what is left
  std::string all = file.read_all();
  std::vector<int> next(3, 0);
  size_t pos = 0, lines = 0;
  while (pos < all.size()) {
    size_t nl = all.find('\n', pos);
    REQUIRE(nl != std::string::npos);
    std::string line = all.substr(pos, nl - pos);
    int t = line[0] - '0';
    REQUIRE(line == std::to_string(t) + ":" + std::to_string(next[t]) + std::string(100, 'y'));
    ++next[t];
    ++lines;
    pos = nl + 1;
  }
  CHECK(lines == 1500);
}

TEST_CASE("a line is marked pending only when the slice that writes it goes out") {
  // A pipe nobody reads: the writer blocks in the first slice's write(2). The session table must
  // then name a line of that slice as pending, never the last queued line (a worker killed there
  // would otherwise have its sessions resumed after lines that never reached stdout).
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  fcntl(fds[1], F_SETPIPE_SZ, 4096);
  castgate::SessionTable table(4);
  auto backlog = std::make_shared<Backlog>(SIZE_MAX);
  backlog->attach(table.open("s1"));
  StdoutWriter::Options opts;
  opts.fd = fds[1];
  opts.batch_bytes = 1 << 20;  // all 200 lines gather into one batch
  opts.gather_delay = std::chrono::milliseconds(200);
  opts.slice_bytes = 8192;
  std::string line(1000, 'x');
  std::string hash(64, 'a');
  {
    StdoutWriter writer(opts);
    for (uint64_t i = 0; i < 200; ++i) writer.submit(line, ChainPoint{i, hash, false}, backlog);
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    auto open = table.open_chains();
    REQUIRE(open.size() == 1);
    CHECK(open[0].pending.known);
    CHECK(open[0].pending.seq < 9);  // within the first slice, not line 199
    // Read everything so that the writer finishes.
    std::thread reader([&] {
      char buf[65536];
      while (read(fds[0], buf, sizeof buf) > 0) {
      }
    });
    CHECK(writer.drain(std::chrono::seconds(10)));
    CHECK(table.open_chains()[0].written.seq == 199);
    close(fds[1]);
    fds[1] = -1;
    reader.join();
  }
  close(fds[0]);
}

TEST_CASE("the queue takes about the memory of the lines it holds, whatever their sizes") {
  // A pipe nobody reads until the queue is full: the writer blocks in its first write(2) and
  // everything else waits in the queue. Lines alternate between short and just long enough to
  // get a page of their own (the pattern that leaves pages least full), then come in any size.
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  fcntl(fds[1], F_SETPIPE_SZ, 4096);
  StdoutWriter::Options opts;
  opts.fd = fds[1];
  opts.gather_delay = std::chrono::milliseconds(0);
  auto backlog = std::make_shared<Backlog>(SIZE_MAX);
  std::string hash(64, 'd');
  std::string expected;
  std::mt19937 gen(7);
  {
    StdoutWriter writer(opts);
    uint64_t seq = 0;
    auto submit = [&](size_t size) {
      std::string line = std::to_string(seq) + std::string(size, 'z');
      writer.submit(line, ChainPoint{seq++, hash, false}, backlog);
      expected += line + "\n";
    };
    for (int i = 0; i < 100; ++i) {
      submit(10);
      submit(opts.slice_bytes / 4 + 1);
    }
    while (expected.size() < (24u << 20)) submit(gen() % 3 ? gen() % 2000 : gen() % 300000);
    const size_t queued = writer.bytes_queued();
    CHECK(queued > (20u << 20));
    // Within a third of the bytes, a line's bookkeeping and the few pages kept for reuse.
    CHECK(writer.buffer_bytes() < queued / 3 * 4 + seq * 2 * 128 + (6 * opts.slice_bytes));
    MESSAGE("queued " << queued << " bytes in " << writer.buffer_bytes() << " bytes");
    std::string got;
    std::thread reader([&] {
      char buf[65536];
      for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) got.append(buf, size_t(n));
    });
    CHECK(writer.drain(std::chrono::seconds(20)));
    CHECK(writer.buffer_bytes() <= 4 * (opts.slice_bytes + 4096 * 128));  // the pages kept
    close(fds[1]);
    reader.join();
    CHECK(got == expected);
  }
  close(fds[0]);
}

TEST_CASE("a page is written as one write of at most slice_bytes of lines, reused or not") {
  // Each write(2) arrives as one message on a SOCK_SEQPACKET socket. A page first sized for a
  // long line and kept for reuse must not take twice slice_bytes of short lines later.
  int fds[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds) == 0);
  int big = 1 << 20;
  setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  std::vector<size_t> writes;
  std::thread reader([&] {
    std::vector<char> buf(1 << 20);
    for (ssize_t n; (n = recv(fds[0], buf.data(), buf.size(), 0)) > 0;)
      writes.push_back(static_cast<size_t>(n));
  });
  StdoutWriter::Options opts;
  opts.fd = fds[1];
  opts.slice_bytes = 8192;
  opts.gather_delay = std::chrono::milliseconds(50);
  auto backlog = std::make_shared<Backlog>(SIZE_MAX);
  std::string hash(64, 'e');
  {
    StdoutWriter writer(opts);
    writer.submit(std::string(16000, 'L'), ChainPoint{0, hash, false}, backlog);
    CHECK(writer.drain(std::chrono::seconds(10)));
    for (uint64_t i = 1; i <= 40; ++i)
      writer.submit(std::string(998, 's'), ChainPoint{i, hash, false}, backlog);
    CHECK(writer.drain(std::chrono::seconds(10)));
  }
  shutdown(fds[1], SHUT_WR);
  reader.join();
  close(fds[0]);
  close(fds[1]);
  REQUIRE(writes.size() >= 6);
  CHECK(writes[0] == 16001);
  size_t total = 0;
  for (size_t i = 1; i < writes.size(); ++i) {
    CHECK(writes[i] <= opts.slice_bytes);
    total += writes[i];
  }
  CHECK(total == 40 * 999);
}
