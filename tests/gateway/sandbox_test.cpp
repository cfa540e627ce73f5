// Each case forks a child that enters the sandbox and then does one thing; the parent checks how
// the child ended. Real peers throughout: loopback TCP, HTTP and DNS servers run by the parent.
#include "gateway/sandbox.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <libssh/libssh.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <resolv.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <thread>

#include "common/c_handle.h"
#include "gateway/ssh_handles.h"
#include "oidc/curl_handles.h"

using namespace castgate;

namespace {

struct Ending {
  int status = 0;
  bool timed_out = false;
  std::string stderr_text;
  bool exited(int code) const {
    return !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == code;
  }
  bool killed_by(int sig) const {
    return !timed_out && WIFSIGNALED(status) && WTERMSIG(status) == sig;
  }
};

std::string describe(const Ending& e) {
  std::string how = e.timed_out           ? "timed out"
                    : WIFEXITED(e.status) ? "exited " + std::to_string(WEXITSTATUS(e.status))
                    : WIFSIGNALED(e.status)
                        ? "killed by signal " + std::to_string(WTERMSIG(e.status))
                        : "ended oddly";
  return how + "; stderr: " + e.stderr_text;
}

// A child step that went wrong: say which on stderr (the parent shows it) and fail.
int failed(const char* step) {
  std::fprintf(stderr, "%s failed: %s\n", step, std::strerror(errno));
  return 1;
}

// Forks; the child enters the sandbox and ends with _exit(body(report)). Its stderr comes back.
// `in_parent` runs once the child exists: threads started before fork could leave a lock (the
// sanitizer's allocator) held in the child.
Ending run_sandboxed(const std::function<int(const sandbox::Report&)>& body,
                     const sandbox::Options& options = {},
                     const std::function<void()>& in_parent = {}) {
  int pipefd[2];
  REQUIRE(pipe2(pipefd, O_CLOEXEC) == 0);
  std::cout.flush();
  std::fflush(nullptr);  // no buffered output the child would write twice
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(pipefd[1], STDERR_FILENO);
    int code = 99;
    try {
      code = body(sandbox::enter(options));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
    }
    _exit(code);
  }
  close(pipefd[1]);
  if (in_parent) in_parent();
  fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
  Ending ending;
  auto drain = [&] {
    char buf[4096];
    ssize_t n;
    while ((n = read(pipefd[0], buf, sizeof buf)) > 0) ending.stderr_text.append(buf, n);
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (waitpid(pid, &ending.status, WNOHANG) != pid) {
    drain();
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &ending.status, 0);
      ending.timed_out = true;
      break;
    }
    usleep(10000);
  }
  drain();
  close(pipefd[0]);
  return ending;
}

int loopback_socket(int type, sockaddr_in& address) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof address;
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&address), len) == 0);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &len) == 0);
  if (type == SOCK_STREAM) REQUIRE(listen(fd, 8) == 0);
  return fd;
}

// Loopback peers for the child: TCP connections get a canned answer by what they send first
// (an HTTP GET, an SSH banner, nothing), DNS queries get NXDOMAIN. The sockets exist from the
// start; they are served from start() until destroyed.
class Peers {
 public:
  Peers() {
    tcp_ = loopback_socket(SOCK_STREAM, tcp_address);
    udp_ = loopback_socket(SOCK_DGRAM, dns_address);
  }
  ~Peers() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    close(tcp_);
    close(udp_);
  }
  void start() {
    thread_ = std::thread([this] { serve(); });
  }
  int tcp_port() const { return ntohs(tcp_address.sin_port); }

  sockaddr_in tcp_address{};
  sockaddr_in dns_address{};

 private:
  void serve() {
    while (!stop_) {
      pollfd fds[2] = {{tcp_, POLLIN, 0}, {udp_, POLLIN, 0}};
      if (poll(fds, 2, 50) <= 0) continue;
      if (fds[0].revents & POLLIN) answer_tcp();
      if (fds[1].revents & POLLIN) answer_dns();
    }
  }
  void answer_tcp() {
    int c = accept4(tcp_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    pollfd p{c, POLLIN, 0};
    char buf[4096];
    ssize_t n = poll(&p, 1, 2000) == 1 ? read(c, buf, sizeof buf) : 0;
    std::string first(buf, n > 0 ? static_cast<size_t>(n) : 0);
    std::string answer;
    if (first.starts_with("GET "))
      answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    else if (first.starts_with("SSH-"))
      answer = "SSH-2.0-castgate_sandbox_test\r\n";
    ssize_t written = answer.empty() ? 0 : write(c, answer.data(), answer.size());
    (void)written;  // the child checks what it got
    close(c);
  }
  void answer_dns() {
    unsigned char q[512];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(udp_, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 12) return;
    q[2] |= 0x80;  // a response
    q[3] = 0x83;   // recursion available, NXDOMAIN
    sendto(udp_, q, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), len);
  }

  int tcp_ = -1;
  int udp_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Name lookups on a thread of their own, as libcurl's threaded resolver does them (this libcurl
// answers "localhost" itself): /etc/hosts, netlink for AI_ADDRCONFIG, and a name only DNS knows,
// asked of the parent's server (glibc honours changes to the thread's _res): UDP sockets,
// sendmmsg, poll, recvfrom.
int resolve_names(const Peers& peers) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* found = nullptr;
  if (getaddrinfo("localhost", "22", &hints, &found) != 0) return failed("getaddrinfo(localhost)");
  freeaddrinfo(found);
  res_init();
  _res.nscount = 1;
  _res.nsaddr_list[0] = peers.dns_address;
  _res.retrans = 2;
  _res.retry = 1;
  int rc = getaddrinfo("castgate-sandbox-test.example", nullptr, &hints, &found);
  if (rc != EAI_NONAME) {
    std::fprintf(stderr, "DNS lookup failed: %s\n", gai_strerror(rc));
    return 1;
  }
  return 0;
}

// What a worker does, step by step; the first step that fails says so and ends the child.
int worker_work(const Peers& peers) {
  if (prctl(PR_SET_NAME, "sandboxed") != 0) return failed("prctl(PR_SET_NAME)");

  std::atomic<int> ran{0};
  std::thread a([&] { ran += std::thread::hardware_concurrency() > 0; });
  std::thread b([&] { ran += 1; });
  a.join();
  b.join();
  if (ran != 2) return failed("threads");

  int ep = epoll_create1(EPOLL_CLOEXEC);
  int ev = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN;
  if (ep < 0 || ev < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ev, &event) != 0) return failed("epoll");
  uint64_t one = 1;
  if (write(ev, &one, sizeof one) != sizeof one || epoll_wait(ep, &event, 1, 1000) != 1)
    return failed("eventfd");
  close(ev);
  close(ep);

  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0 || connect(s, reinterpret_cast<const sockaddr*>(&peers.tcp_address),
                       sizeof peers.tcp_address) != 0)
    return failed("TCP connect");
  close(s);

  int resolved = 1;
  std::thread resolver([&] { resolved = resolve_names(peers); });
  resolver.join();
  if (resolved != 0) return resolved;

  std::ifstream hosts("/etc/hosts");
  std::string line;
  if (!std::getline(hosts, line)) return failed("reading /etc/hosts");
  time_t now = time(nullptr);
  tm local{};
  if (!localtime_r(&now, &local)) return failed("localtime_r");

  {
    std::unique_ptr<SSL_CTX, castgate::CFree<SSL_CTX_free>> tls(SSL_CTX_new(TLS_client_method()));
    unsigned char random[32];
    if (!tls || SSL_CTX_set_default_verify_paths(tls.get()) != 1 ||
        RAND_bytes(random, sizeof random) != 1)
      return failed("OpenSSL");
    if (std::filesystem::exists("/etc/ssl/certs/ca-certificates.crt") &&
        SSL_CTX_load_verify_locations(tls.get(), "/etc/ssl/certs/ca-certificates.crt", nullptr) !=
            1)
      return failed("loading the CA certificates");
  }

  // libcurl: its wakeup socketpair, a non-blocking connect, poll.
  castgate::oidc::curl::Easy easy(curl_easy_init());
  if (!easy) return failed("curl_easy_init");
  CURL* curl = easy.get();
  std::string url = "http://localhost:" + std::to_string(peers.tcp_port()) + "/";
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(
      curl, CURLOPT_WRITEFUNCTION, +[](char* p, size_t size, size_t n, void* out) {
        static_cast<std::string*>(out)->append(p, size * n);
        return size * n;
      });
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 5L);
  CURLcode code = curl_easy_perform(curl);
  easy.reset();
  if (code != CURLE_OK || body != "ok") {
    std::fprintf(stderr, "HTTP GET failed: %s, body '%s'\n", curl_easy_strerror(code),
                 body.c_str());
    return 1;
  }

  // An SSH client that meets a server which hangs up after its banner: a clean error.
  castgate::ssh::Session owned_ssh(ssh_new());
  ssh_session ssh = owned_ssh.get();
  int off = 0;
  unsigned port = static_cast<unsigned>(peers.tcp_port());
  long timeout = 5;
  ssh_options_set(ssh, SSH_OPTIONS_PROCESS_CONFIG, &off);
  ssh_options_set(ssh, SSH_OPTIONS_HOST, "127.0.0.1");
  ssh_options_set(ssh, SSH_OPTIONS_PORT, &port);
  ssh_options_set(ssh, SSH_OPTIONS_TIMEOUT, &timeout);
  if (ssh_connect(ssh) != SSH_ERROR) return failed("ssh_connect to a server that hangs up");
  return 0;
}

std::string temp_dir(const char* under) {
  std::string path = std::string(under) + "/castgate-sandbox-XXXXXX";
  REQUIRE(mkdtemp(path.data()) != nullptr);
  return path;
}

}  // namespace

TEST_CASE("sandbox: a worker's ordinary work survives it") {
  Peers peers;
  auto ending = run_sandboxed(
      [&](const sandbox::Report& report) {
        if (!report.seccomp) return failed("report.seccomp");
        return worker_work(peers);
      },
      {}, [&] { peers.start(); });
  INFO(describe(ending));
  CHECK(ending.exited(0));
}

TEST_CASE("sandbox: exit() with its handlers (LeakSanitizer's check in the sanitizer build)") {
  auto ending = run_sandboxed([](const sandbox::Report&) -> int { std::exit(0); });
  INFO(describe(ending));
  CHECK(ending.exited(0));
}

TEST_CASE("sandbox: creating a file ends the worker by SIGSYS") {
  std::string dir = temp_dir("/tmp");
  std::string file = dir + "/created";
  auto ending = run_sandboxed([&](const sandbox::Report&) {
    int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    std::fprintf(stderr, "open returned %d\n", fd);
    return 0;
  });
  INFO(describe(ending));
  CHECK(ending.killed_by(SIGSYS));
  CHECK(ending.stderr_text.find("forbidden system call") != std::string::npos);
  CHECK(ending.stderr_text.find("open returned") == std::string::npos);
  CHECK(!std::filesystem::exists(file));
  std::filesystem::remove_all(dir);
}

#ifdef CASTGATE_FAULT_INJECTION
TEST_CASE("sandbox: the fault injection's forbidden call ends the worker by SIGSYS") {
  auto ending = run_sandboxed([](const sandbox::Report&) {
    sandbox::make_forbidden_call();
    return 0;
  });
  INFO(describe(ending));
  CHECK(ending.killed_by(SIGSYS));
}
#endif

TEST_CASE("sandbox: fork ends the worker by SIGSYS") {
  auto ending = run_sandboxed([](const sandbox::Report&) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    std::fprintf(stderr, "fork returned %d\n", static_cast<int>(pid));
    return 0;
  });
  INFO(describe(ending));
  CHECK(ending.killed_by(SIGSYS));
  CHECK(ending.stderr_text.find("fork returned") == std::string::npos);
}

TEST_CASE("sandbox: execve ends the worker by SIGSYS") {
  auto ending = run_sandboxed([](const sandbox::Report&) {
    char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
    execve("/bin/true", argv, environ);
    return failed("execve");
  });
  INFO(describe(ending));
  CHECK(ending.killed_by(SIGSYS));
}

TEST_CASE("sandbox: a packet socket ends the worker by SIGSYS") {
  auto ending = run_sandboxed([](const sandbox::Report&) {
    socket(AF_PACKET, SOCK_RAW, 0);
    return failed("socket(AF_PACKET)");
  });
  INFO(describe(ending));
  CHECK(ending.killed_by(SIGSYS));
}

TEST_CASE("sandbox: other forbidden calls end the worker by SIGSYS") {
  std::function<void()> call;
  long nr = -1;  // the call the line on stderr names
  SUBCASE("opening a readable file for writing") {
    call = [] { open("/etc/hosts", O_RDWR | O_CLOEXEC); };
    nr = SYS_openat;
  }
  SUBCASE("a signal to another process (the signer, the parent)") {
    call = [] { kill(getppid(), 0); };
    nr = SYS_kill;
  }
  SUBCASE("a terminal ioctl beyond the few allowed (TIOCSTI types into a terminal)") {
    call = [] {
      char c = 'x';
      ioctl(STDIN_FILENO, TIOCSTI, &c);
    };
    nr = SYS_ioctl;
  }
  SUBCASE("F_SETOWN: the kernel would signal any process of the uid on I/O") {
    call = [] {
      int pair[2];
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair);
      fcntl(pair[0], F_SETOWN, getppid());
    };
    nr = SYS_fcntl;
  }
  SUBCASE("O_ASYNC through F_SETFL") {
    call = [] {
      int pair[2];
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair);
      fcntl(pair[0], F_SETFL, O_NONBLOCK | O_ASYNC);
    };
    nr = SYS_fcntl;
  }
  SUBCASE("a new user namespace") {
    call = [] { unshare(CLONE_NEWUSER); };
    nr = SYS_unshare;
  }
#ifndef CASTGATE_SANITIZE  // the sanitizer build allows ptrace for LeakSanitizer
  SUBCASE("ptrace") {
    call = [] { ptrace(PTRACE_TRACEME, 0, nullptr, nullptr); };
    nr = SYS_ptrace;
  }
#endif
  auto ending = run_sandboxed([&](const sandbox::Report&) {
    call();
    return failed("the forbidden call");
  });
  INFO(describe(ending));
  CHECK(ending.killed_by(SIGSYS));
  CHECK(ending.stderr_text.find("forbidden system call " + std::to_string(nr) + ";") !=
        std::string::npos);
}

TEST_CASE("sandbox: a named Unix socket is refused, and the worker goes on") {
  // glibc tries nscd's socket on every lookup; it must fail gently, not end the worker.
  auto ending = run_sandboxed([](const sandbox::Report&) {
    if (socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) >= 0 || errno != EACCES)
      return failed("refusing socket(AF_UNIX)");
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
      return failed("socketpair(AF_UNIX)");
    return 0;
  });
  INFO(describe(ending));
  CHECK(ending.exited(0));
}

TEST_CASE("sandbox: files outside the allowed paths cannot be read (Landlock)") {
  std::string dir = temp_dir("/var/tmp");
  std::string secret = dir + "/key";
  std::ofstream(secret) << "not for workers\n";
  std::string allowed_dir = temp_dir("/var/tmp");
  std::ofstream(allowed_dir + "/config") << "for workers\n";
  sandbox::Options options;
  options.readable = {allowed_dir, "/nonexistent/castgate-sandbox"};

  auto ending = run_sandboxed(
      [&](const sandbox::Report& report) {
        if (report.landlock_abi == 0) {
          // Not enforced: the report must say why, and the key stays readable.
          std::fprintf(stderr, "landlock: %s\n", report.landlock.c_str());
          return report.landlock.starts_with("not enforced: ") ? 3 : 4;
        }
        if (report.landlock != "enforced (ABI " + std::to_string(report.landlock_abi) + ")")
          return failed("report.landlock");
        int fd = open(secret.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0 || errno != EACCES) return failed("denying the key file");
        if (open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC) >= 0 || errno != EACCES)
          return failed("denying the key directory");
        // Of its own /proc directory only what the runtimes read: not its environment (settings
        // given as CASTGATE_* variables), not its descriptors' files.
        if (open("/proc/self/environ", O_RDONLY | O_CLOEXEC) >= 0 || errno != EACCES)
          return failed("denying /proc/self/environ");
        if (open("/proc/self/maps", O_RDONLY | O_CLOEXEC) < 0) return failed("/proc/self/maps");
        std::ifstream config(allowed_dir + "/config"), hosts("/etc/hosts");
        std::string line;
        if (!std::getline(config, line) || line != "for workers")
          return failed("reading Options::readable");
        if (!std::getline(hosts, line)) return failed("reading /etc/hosts");
        return 0;
      },
      options);
  INFO(describe(ending));
  if (ending.exited(3)) {
    MESSAGE("Landlock is not enforced here: " << ending.stderr_text);
  } else {
    CHECK(ending.exited(0));
  }
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(allowed_dir);
}

TEST_CASE("sandbox: the parent, once confined, cannot read the key files again but may fork") {
  std::string dir = temp_dir("/var/tmp");
  std::string key = dir + "/user_ca";
  std::ofstream(key) << "not for anyone after start-up\n";
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int ready[2];
    if (pipe(ready) != 0) _exit(9);
    pid_t first = fork();  // a worker started before the parent was confined
    if (first == 0) {
      signal(SIGTERM, SIG_DFL);  // not the test framework's handler: just end
      if (write(ready[1], "r", 1) != 1) _exit(1);
      for (;;) pause();
    }
    char r;
    if (first < 0 || read(ready[0], &r, 1) != 1) _exit(9);
    auto report = sandbox::confine_parent({});
    // It still stops that worker (SIGTERM on shutdown): no signal scope for the parent.
    int first_status = 0;
    if (first < 0 || kill(first, SIGTERM) != 0 || waitpid(first, &first_status, 0) != first ||
        !WIFSIGNALED(first_status))
      _exit(8);
    if (report.landlock_abi == 0) _exit(report.landlock.starts_with("not enforced: ") ? 3 : 4);
    if (open(key.c_str(), O_RDONLY | O_CLOEXEC) >= 0 || errno != EACCES) _exit(5);
    if (open((dir + "/new").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600) >= 0) _exit(6);
    pid_t worker = fork();  // a replacement worker: still possible
    if (worker == 0) _exit(open("/etc/hosts", O_RDONLY | O_CLOEXEC) >= 0 ? 0 : 1);
    int status = 0;
    if (worker < 0 || waitpid(worker, &status, 0) != worker || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
      _exit(7);
    _exit(0);
  }
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (waitpid(pid, &status, WNOHANG) != pid) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      FAIL("the confined child did not end");
    }
    usleep(10000);
  }
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 3)
    MESSAGE("Landlock is not enforced here");
  else
    CHECK(WEXITSTATUS(status) == 0);
  CHECK_FALSE(std::filesystem::exists(dir + "/new"));
  std::filesystem::remove_all(dir);
}
