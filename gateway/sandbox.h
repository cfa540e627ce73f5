// The sandbox a network-facing worker process enters right after fork, before it starts a thread.
// Workers run libssh, the SFTP/SCP parsers, the terminal emulator, the JSON code and the OIDC
// client: everything an attacker talks to. The sandbox leaves them what that work needs and takes
// away what a compromised worker would reach for next: the key files (same uid), other processes,
// the file system, the kernel's rarer interfaces.
//
// First: no new privileges, not dumpable (no core files, no ptrace or /proc/PID/mem by the same
// uid), RLIMIT_CORE 0.
//
// Landlock (files; best effort: enter() reports when the kernel has none). Every access right the
// running kernel knows is handled; only reading (files, directory listings) is granted, beneath
//   CA certificates    /etc/ssl /usr/lib/ssl /usr/share/ca-certificates /etc/pki
//   name service       /etc/nsswitch.conf /etc/hosts /etc/resolv.conf /etc/host.conf /etc/gai.conf
//                      /etc/services /etc/protocols /etc/passwd /etc/group (libssh looks up the
//                      home directory; without the files NSS goes on to modules such as systemd's)
//   time zones         /etc/localtime /usr/share/zoneinfo
//   shared libraries   /etc/ld.so.cache /lib /lib64 /usr/lib /usr/lib64 (NSS modules, OpenSSL
//                      providers and configuration loaded late)
//   devices            /dev/urandom /dev/null
//   itself             /proc/self/{maps,status,stat} (not the rest), /sys/devices/system/cpu
//   Landlock ABI 6 and later also scope signals (none to the parent, the signer or other
//   workers, F_SETOWN's SIGIO included) and abstract unix sockets to the worker itself.
//   and Options::readable. Paths that do not exist are skipped.
// So the worker can write no file and cannot read the key files (/etc/castgate, a secret mount)
// although it runs as their owner.
//
// seccomp (system calls; required: enter() throws when the filter cannot be loaded). An allowlist;
// any other call ends the process by SIGSYS, after one line on stderr with the call's number (no
// line when the calling thread blocks SIGSYS: the kernel then kills the process directly).
//   memory       brk mmap munmap mprotect (PROT_EXEC too: NSS modules, OpenSSL providers load
//                late) mremap madvise
//   threads      clone only with CLONE_THREAD and no namespace flag (threads, not processes);
//                clone3 fails with ENOSYS, as its flags sit in memory a filter cannot read, and
//                glibc falls back to clone; futex set_robust_list rseq set_tid_address exit
//                sched_yield sched_getaffinity
//   event loop   epoll_* eventfd2 timerfd_* signalfd4 poll ppoll select pselect6 pipe2
//   files        openat only without O_WRONLY/O_RDWR/O_CREAT/O_TRUNC/O_APPEND; read write readv
//                writev pread64 close close_range fstat newfstatat statx lseek getdents64
//                readlink(at) access faccessat(2) dup dup2 dup3 getcwd; fcntl only
//                F_GETFD/F_SETFD/F_GETFL/F_DUPFD(_CLOEXEC) and F_SETFL without O_ASYNC (F_SETOWN
//                and F_SETSIG would have the kernel signal any process of the uid)
//   network      socket: AF_INET and AF_INET6 streams and datagrams (SSH, HTTPS, DNS), AF_NETLINK
//                for NETLINK_ROUTE only (getaddrinfo's AI_ADDRCONFIG); AF_UNIX fails with EACCES
//                (glibc then does without nscd), because connect() on one reaches any named socket
//                of the uid, which Landlock does not cover. socketpair(AF_UNIX); connect bind
//                (netlink) accept4 shutdown getsockopt setsockopt getsockname getpeername sendto
//                recvfrom sendmsg recvmsg sendmmsg recvmmsg
//   signals      rt_sigaction rt_sigprocmask rt_sigreturn sigaltstack restart_syscall; tgkill only
//                to its own threads
//   ioctl        FIONREAD FIONBIO FIOCLEX FIONCLEX TCGETS (isatty) TIOCGWINSZ; any other request
//                ends the worker: nothing that writes to a terminal (TIOCSTI) or talks to a device
//   prctl        PR_SET_NAME PR_GET_NAME (thread names), PR_CAPBSET_READ (libcap's constructor,
//                in NSS modules linked to it)
//   the rest     getpid gettid getppid getuid geteuid getgid getegid getgroups uname getrandom
//                clock_gettime clock_getres gettimeofday nanosleep clock_nanosleep getrusage
//                sysinfo (glibc's qsort sizes its buffer by it) prlimit64 on itself, exit_group
// Forbidden, with everything else: new processes (fork, vfork, clone without CLONE_THREAD),
// execve/execveat, opening a file to write, creating, renaming or removing files, chmod/chown,
// ptrace, process_vm_readv/writev, kill and signals to other processes, mount, unshare, setns,
// chroot, setuid and friends, keyctl, bpf, perf_event_open, io_uring, userfaultfd, memfd_create,
// module loading, reboot, raw and packet sockets.
// The sanitizer test build widens the list for what ASan/LSan need (see sandbox.cpp).
#pragma once

#include <string>
#include <vector>

namespace castgate::sandbox {

struct Options {
  // Files or directories the worker may read besides the system's (CA certificates, NSS/DNS
  // configuration, time zones, shared libraries, /dev/urandom, parts of /proc/self, CPUs).
  std::vector<std::string> readable;
};

struct Report {
  bool seccomp = false;  // the filter is loaded (always true when enter() returns)
  int landlock_abi = 0;  // 0: the kernel has no Landlock; the key files stay readable by the uid
  std::string landlock;  // "enforced (ABI N)" or why not
};

// Applies to the calling process, which must not have started threads yet. Throws
// std::runtime_error when seccomp cannot be loaded (fail closed); Landlock is best effort.
Report enter(const Options& options);

// The parent's, once it has read every file and started its workers: no new privileges, not
// dumpable, and the same Landlock rules, so that it cannot read the key files again either (its
// workers, forked later, inherit the rules and add their own). No seccomp: it forks workers.
Report confine_parent(const Options& options);

#ifdef CASTGATE_FAULT_INJECTION
// Test-only: opens "/" for writing, which the filter forbids, so a test can prove that a
// sandboxed worker dies by SIGSYS. Outside the sandbox it fails with EISDIR and changes nothing.
void make_forbidden_call();
#endif

}  // namespace castgate::sandbox
