#include "gateway/sandbox.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/netlink.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <stdexcept>

#include "common/c_handle.h"
#include "common/unique_fd.h"

// Newer than this system's <linux/landlock.h>; the running kernel says which it knows.
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

namespace castgate::sandbox {
namespace {

[[noreturn]] void fail(const std::string& what, int err) {
  throw std::runtime_error("cannot sandbox the worker: " + what + ": " + std::strerror(err));
}

// ---- Landlock

const char* const kSystemReadable[] = {
    // CA certificates
    "/etc/ssl", "/usr/lib/ssl", "/usr/share/ca-certificates", "/etc/pki",
    // name service: hosts, DNS, and the user's entry (libssh looks the home directory up)
    "/etc/nsswitch.conf", "/etc/hosts", "/etc/resolv.conf", "/etc/host.conf", "/etc/gai.conf",
    "/etc/services", "/etc/protocols", "/etc/passwd", "/etc/group",
    // time zones
    "/etc/localtime", "/usr/share/zoneinfo",
    // shared libraries loaded late (NSS modules, OpenSSL providers)
    "/etc/ld.so.cache", "/lib", "/lib64", "/usr/lib", "/usr/lib64",
    // devices, the few files of this process's own /proc directory the runtimes read
    // (/proc/self resolves to /proc/<pid>; not its environment), the CPU count
    "/dev/urandom", "/dev/null", "/proc/self/maps", "/proc/self/status", "/proc/self/stat",
    "/sys/devices/system/cpu"};

constexpr uint64_t kScopeAbstractUnixSocket = 1ULL << 0;  // LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
constexpr uint64_t kScopeSignal = 1ULL << 1;              // LANDLOCK_SCOPE_SIGNAL

// Every file system right the running ABI knows, so that nothing it can check stays allowed.
uint64_t handled_access(int abi) {
  uint64_t access =
      LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
      LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
      LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
      LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
      LANDLOCK_ACCESS_FS_MAKE_SYM;
  if (abi >= 2) access |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) access |= LANDLOCK_ACCESS_FS_TRUNCATE;
  if (abi >= 5) access |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
  return access;
}

std::string not_enforced(const std::string& what, int err) {
  return "not enforced: " + what + ": " + std::strerror(err);
}

// Returns Report::landlock; sets `abi` only when the ruleset is in force.
std::string restrict_files(const Options& options, bool scoped, int& abi) {
  long version = syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (version < 0) {
    if (errno == ENOSYS) return "not enforced: the kernel has no Landlock (Linux 5.13 or later)";
    if (errno == EOPNOTSUPP) return "not enforced: Landlock is disabled (boot option lsm=)";
    return not_enforced("landlock_create_ruleset", errno);
  }
  // landlock_ruleset_attr as of ABI 6 (Debian 12's headers stop at ABI 1): the kernel takes a
  // longer struct whose unknown members are zero.
  struct {
    uint64_t handled_access_fs, handled_access_net, scoped;
  } attr{};
  attr.handled_access_fs = handled_access(static_cast<int>(version));
  // ABI 6: no signals to processes outside this worker (the parent, the signer, other workers),
  // F_SETOWN's SIGIO included, and no abstract unix sockets of other domains.
  if (scoped && version >= 6) attr.scoped = kScopeAbstractUnixSocket | kScopeSignal;
  UniqueFd ruleset(syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0));
  if (ruleset.get() < 0) return not_enforced("landlock_create_ruleset", errno);

  std::vector<std::string> paths(std::begin(kSystemReadable), std::end(kSystemReadable));
  paths.insert(paths.end(), options.readable.begin(), options.readable.end());
#ifdef CASTGATE_SANITIZE
  // Sanitizer test build only: reports symbolize from its executable, and LeakSanitizer's check
  // at exit lists the threads in /proc/self/task.
  paths.push_back("/proc/self/exe");
  paths.push_back("/proc/self/task");
#endif
  for (const auto& path : paths) {
    UniqueFd fd(open(path.c_str(), O_PATH | O_CLOEXEC));
    struct stat st {};
    if (fd.get() < 0 || fstat(fd.get(), &st) != 0) continue;  // not on this system
    landlock_path_beneath_attr rule{};
    rule.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE;
    if (S_ISDIR(st.st_mode)) rule.allowed_access |= LANDLOCK_ACCESS_FS_READ_DIR;
    rule.parent_fd = fd.get();
    if (syscall(SYS_landlock_add_rule, ruleset.get(), LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0)
      return not_enforced("landlock_add_rule " + path, errno);
  }
  if (syscall(SYS_landlock_restrict_self, ruleset.get(), 0) != 0)
    return not_enforced("landlock_restrict_self", errno);
  abi = static_cast<int>(version);
  return "enforced (ABI " + std::to_string(version) + ")";
}

// ---- seccomp

// libseccomp's SCMP_A0()... are C compound literals; this is the same in C++.
scmp_arg_cmp arg(unsigned index, scmp_compare op, uint64_t a, uint64_t b = 0) {
  return scmp_arg_cmp{index, op, a, b};
}

using Filter = std::unique_ptr<void, CFree<seccomp_release>>;

class Rules {
 public:
  explicit Rules(scmp_filter_ctx ctx) : ctx_(ctx) {}

  void allow(int nr, std::initializer_list<scmp_arg_cmp> args = {}) {
    add(SCMP_ACT_ALLOW, nr, args);
  }
  void fail_with(int err, int nr, std::initializer_list<scmp_arg_cmp> args = {}) {
    add(SCMP_ACT_ERRNO(static_cast<uint32_t>(err)), nr, args);
  }

 private:
  void add(uint32_t action, int nr, std::initializer_list<scmp_arg_cmp> args) {
    if (nr < 0) return;  // a call this architecture does not have (libseccomp's pseudo number)
    int rc =
        seccomp_rule_add_array(ctx_, action, nr, static_cast<unsigned>(args.size()), args.begin());
    if (rc != 0) fail("seccomp rule for system call " + std::to_string(nr), -rc);
  }
  scmp_filter_ctx ctx_;
};

constexpr uint64_t kWriteOpenFlags = O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND;
constexpr uint64_t kNamespaceFlags = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
                                     CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
constexpr uint64_t kSocketTypeMask = 0xf;  // the type without SOCK_NONBLOCK / SOCK_CLOEXEC

void add_allowlist(Rules& rules) {
  for (int nr :
       {// memory
        SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(mremap),
        SCMP_SYS(madvise),
        // threads
        SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(set_tid_address),
        SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity),
        // event loop
        SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait),
        SCMP_SYS(epoll_pwait2), SCMP_SYS(eventfd2), SCMP_SYS(timerfd_create),
        SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime), SCMP_SYS(signalfd4), SCMP_SYS(poll),
        SCMP_SYS(ppoll), SCMP_SYS(select), SCMP_SYS(pselect6), SCMP_SYS(pipe2),
        // files already open, and looking at files
        SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64),
        SCMP_SYS(close), SCMP_SYS(close_range), SCMP_SYS(fstat), SCMP_SYS(newfstatat),
        SCMP_SYS(statx), SCMP_SYS(lseek), SCMP_SYS(getdents64), SCMP_SYS(readlink),
        SCMP_SYS(readlinkat), SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2),
        SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3), SCMP_SYS(getcwd),
        // sockets already made
        SCMP_SYS(connect), SCMP_SYS(bind), SCMP_SYS(accept4), SCMP_SYS(shutdown),
        SCMP_SYS(getsockopt), SCMP_SYS(setsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
        SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(sendmsg), SCMP_SYS(recvmsg),
        SCMP_SYS(sendmmsg), SCMP_SYS(recvmmsg),
        // signals
        SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
        SCMP_SYS(sigaltstack), SCMP_SYS(restart_syscall),
        // who and when
        SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getppid), SCMP_SYS(getuid), SCMP_SYS(geteuid),
        SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(getgroups), SCMP_SYS(uname),
        SCMP_SYS(getrandom), SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres),
        SCMP_SYS(gettimeofday), SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep), SCMP_SYS(getrusage),
        SCMP_SYS(sysinfo)})
    rules.allow(nr);

  rules.allow(SCMP_SYS(openat), {arg(2, SCMP_CMP_MASKED_EQ, kWriteOpenFlags, 0)});
  // fcntl: descriptor and status flags, never O_ASYNC, F_SETOWN or F_SETSIG (which would have
  // the kernel send any signal to any process of the uid), nor locks, leases or pipe sizes.
  for (uint64_t command : {F_GETFD, F_SETFD, F_GETFL, F_DUPFD, F_DUPFD_CLOEXEC})
    rules.allow(SCMP_SYS(fcntl), {arg(1, SCMP_CMP_EQ, command)});
  rules.allow(SCMP_SYS(fcntl), {arg(1, SCMP_CMP_EQ, F_SETFL),
                                arg(2, SCMP_CMP_MASKED_EQ, static_cast<uint64_t>(O_ASYNC), 0)});
  rules.allow(SCMP_SYS(clone),
              {arg(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD | kNamespaceFlags, CLONE_THREAD)});
  rules.fail_with(ENOSYS, SCMP_SYS(clone3));
  for (int domain : {AF_INET, AF_INET6})
    for (int type : {SOCK_STREAM, SOCK_DGRAM})
      rules.allow(SCMP_SYS(socket),
                  {arg(0, SCMP_CMP_EQ, static_cast<uint64_t>(domain)),
                   arg(1, SCMP_CMP_MASKED_EQ, kSocketTypeMask, static_cast<uint64_t>(type))});
  rules.allow(SCMP_SYS(socket),
              {arg(0, SCMP_CMP_EQ, AF_NETLINK), arg(2, SCMP_CMP_EQ, NETLINK_ROUTE)});
  rules.fail_with(EACCES, SCMP_SYS(socket), {arg(0, SCMP_CMP_EQ, AF_UNIX)});
  rules.allow(SCMP_SYS(socketpair), {arg(0, SCMP_CMP_EQ, AF_UNIX)});
  rules.allow(SCMP_SYS(tgkill), {arg(0, SCMP_CMP_EQ, static_cast<uint64_t>(getpid()))});
  rules.allow(SCMP_SYS(prlimit64), {arg(0, SCMP_CMP_EQ, 0)});
  // PR_CAPBSET_READ: libcap's constructor, when NSS loads a module linked to it (libnss_systemd).
  for (uint64_t request : {PR_SET_NAME, PR_GET_NAME, PR_CAPBSET_READ})
    rules.allow(SCMP_SYS(prctl), {arg(0, SCMP_CMP_EQ, request)});
  for (uint64_t request : {FIONREAD, FIONBIO, FIOCLEX, FIONCLEX, TCGETS, TIOCGWINSZ})
    rules.allow(SCMP_SYS(ioctl), {arg(1, SCMP_CMP_EQ, request)});

#ifdef CASTGATE_SANITIZE
  // Only in the sanitizer test build (CASTGATE_SANITIZE), never in a release: LeakSanitizer's
  // leak check at exit stops the world from a helper process (clone without CLONE_THREAD) that
  // ptraces the worker's threads, after making the worker dumpable and naming it its tracer.
  rules.allow(SCMP_SYS(clone),
              {arg(0, SCMP_CMP_EQ, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED)});
  // The runtimes use the legacy forms of open and getdents on x86-64.
  for (int nr : {SCMP_SYS(ptrace), SCMP_SYS(wait4), SCMP_SYS(getdents)}) rules.allow(nr);
  rules.allow(SCMP_SYS(open), {arg(1, SCMP_CMP_MASKED_EQ, kWriteOpenFlags, 0)});
  for (uint64_t request : {PR_SET_PTRACER, PR_GET_DUMPABLE, PR_SET_DUMPABLE, PR_SET_PDEATHSIG})
    rules.allow(SCMP_SYS(prctl), {arg(0, SCMP_CMP_EQ, request)});
#endif
}

char* append(char* out, const char* text) {
  while (*text) *out++ = *text++;
  return out;
}

char* append(char* out, long value) {
  char digits[24];
  int n = 0;
  unsigned long v = value < 0 ? 0UL - static_cast<unsigned long>(value) : value;
  do digits[n++] = static_cast<char>('0' + v % 10);
  while ((v /= 10) != 0);
  if (value < 0) *out++ = '-';
  while (n > 0) *out++ = digits[--n];
  return out;
}

// Runs in the signal handler: async-signal-safe calls only, and only allowed ones.
void on_forbidden_call(int, siginfo_t* info, void*) {
  char line[160];
  char* end = append(line, "castgate: worker process ");
  end = append(end, static_cast<long>(getpid()));
  end = append(end, " made a forbidden system call ");
  end = append(end, static_cast<long>(info->si_syscall));
  end = append(end, "; the sandbox ends it\n");
  ssize_t ignored = write(STDERR_FILENO, line, static_cast<size_t>(end - line));
  (void)ignored;
  // Die by SIGSYS itself, so the parent sees WTERMSIG == SIGSYS (raise is getpid/gettid/tgkill).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGSYS, &dfl, nullptr);
  sigset_t sys;
  sigemptyset(&sys);
  sigaddset(&sys, SIGSYS);
  sigprocmask(SIG_UNBLOCK, &sys, nullptr);
  raise(SIGSYS);
  _exit(128 + SIGSYS);
}

void load_filter() {
  struct sigaction action {};
  action.sa_sigaction = on_forbidden_call;
  action.sa_flags = SA_SIGINFO;
  sigfillset(&action.sa_mask);
  if (sigaction(SIGSYS, &action, nullptr) != 0) fail("sigaction(SIGSYS)", errno);

  Filter filter(seccomp_init(SCMP_ACT_TRAP));
  if (!filter) fail("seccomp_init", ENOMEM);
  // Another architecture's calling convention (int 0x80, x32) is a way around the list.
  int rc = seccomp_attr_set(filter.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  // Should a thread exist after all, it gets the filter too.
  if (rc == 0) rc = seccomp_attr_set(filter.get(), SCMP_FLTATR_CTL_TSYNC, 1);
  if (rc != 0) fail("seccomp_attr_set", -rc);
  Rules rules(filter.get());
  add_allowlist(rules);
  rc = seccomp_load(filter.get());
  if (rc != 0) fail("seccomp_load", -rc);
}

}  // namespace

Report enter(const Options& options) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("PR_SET_NO_NEW_PRIVS", errno);
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) fail("PR_SET_DUMPABLE", errno);
  rlimit no_core{0, 0};
  if (setrlimit(RLIMIT_CORE, &no_core) != 0) fail("RLIMIT_CORE", errno);

  Report report;
  report.landlock = restrict_files(options, true, report.landlock_abi);
  report.seccomp = true;  // set before loading: after it, nothing is left that could fail
  load_filter();
  return report;
}

Report confine_parent(const Options& options) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("PR_SET_NO_NEW_PRIVS", errno);
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) fail("PR_SET_DUMPABLE", errno);
  Report report;
  // Files only: the parent signals its workers, the first of which were forked before this and
  // are outside its Landlock domain (a signal scope would stop its SIGTERM to them).
  report.landlock = restrict_files(options, false, report.landlock_abi);
  return report;
}

#ifdef CASTGATE_FAULT_INJECTION
void make_forbidden_call() {
  UniqueFd forbidden(open("/", O_WRONLY | O_CLOEXEC));
}
#endif

}  // namespace castgate::sandbox
