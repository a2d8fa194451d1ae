"""The OS layer of the fallback engines' child: what still holds once the Python policy fell.

Issue 12: the old layer (a descriptor table filled with /dev/null) fell to `os.close`, and the
script then read host files and /proc/<parent>/environ, connected to 127.0.0.1 and deleted a
host file. On Linux the layer is now a seccomp filter (libseccomp, through `pyseccomp`) that
allows only what an interpreter needs to compute and to use the descriptors it already holds:

- no `open`/`openat`/`creat`/`open_by_handle_at`: no file can be opened, /proc included;
- nothing that changes the file system (`unlink`, `rename`, `mkdir`, `chmod`, `truncate`, ...);
- no `socket`/`connect`/`bind`: no network of any family;
- no `execve`, no `fork`/`vfork`, `clone` only for threads; `kill` not at all, `tgkill` only
  to its own threads; no `ptrace`, `process_vm_*`, `io_uring_*`, `bpf`, `mount`, `unshare`;
- `prctl` is refused, and libseccomp sets `no_new_privs` before loading the filter.

Anything not listed fails with EPERM, which Python raises as `PermissionError`. Syscalls of
another ABI (i386 on x86-64) kill the process. macOS and Windows have no such layer here: only
the Python-level policy and the process limits of `_child.harden` apply (docs/engines.md).
"""

import contextlib
import errno
import os
import sys
from typing import Any

# What the interpreter needs after `prepare`: memory, time, randomness, signals it handles
# itself, threads, and reading/writing descriptors it already has. Nothing takes a path
# except `newfstatat`/`statx`, allowed for `fstat` (a path there reveals metadata, not data).
ALLOWED_SYSCALLS = (
    "brk",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "close",
    "exit",
    "exit_group",
    "fcntl",
    "fstat",
    "futex",
    "getegid",
    "geteuid",
    "getgid",
    "getpid",
    "getrandom",
    "getrusage",
    "gettid",
    "gettimeofday",
    "getuid",
    "lseek",
    "madvise",
    "membarrier",
    "mmap",
    "mprotect",
    "mremap",
    "munmap",
    "nanosleep",
    "newfstatat",
    "poll",
    "ppoll",
    "pread64",
    "pselect6",
    "read",
    "readv",
    "restart_syscall",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_getaffinity",
    "sched_yield",
    "select",
    "set_robust_list",
    "sigaltstack",
    "statx",
    "sysinfo",
    "time",
    "times",
    "uname",
    "write",
    "writev",
)
CLONE_THREAD = 0x00010000


class OSLayerWarning(UserWarning):
    """The fallback child runs without its OS layer (only the Python policy and limits)."""


class Confinement:
    """The seccomp filter, built before `_child.harden` (building imports libseccomp and so
    opens files) and loaded after it."""

    def __init__(self) -> None:
        self._rules: Any = None
        self.reason: str | None = None
        if not sys.platform.startswith("linux"):
            self.reason = f"{sys.platform} has no seccomp"
            return
        try:
            import pyseccomp as seccomp
        except (ImportError, RuntimeError, OSError) as error:
            self.reason = f"libseccomp is not usable ({error}): install libseccomp2 and pyseccomp"
            return
        rules = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
        for name in ALLOWED_SYSCALLS:
            with contextlib.suppress(OSError):  # a syscall this architecture lacks
                rules.add_rule(seccomp.ALLOW, name)
        # Threads only: a new process needs clone without CLONE_THREAD (fork), or clone3,
        # which glibc falls back from on ENOSYS.
        thread = seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, CLONE_THREAD)
        rules.add_rule(seccomp.ALLOW, "clone", thread)
        rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        rules.add_rule(seccomp.ALLOW, "tgkill", seccomp.Arg(0, seccomp.EQ, os.getpid()))
        rules.add_rule(seccomp.ALLOW, "prlimit64", seccomp.Arg(2, seccomp.EQ, 0))  # read only
        self._rules = rules

    def apply(self) -> str | None:
        """Load the filter for the rest of the process's life; else the warning line."""
        if self._rules is not None:
            try:
                self._rules.load()  # sets no_new_privs first (libseccomp's default)
                return None
            except OSError as error:
                self.reason = f"the kernel refused the seccomp filter ({error})"
        return (
            f"warning: the fallback engine's OS layer is off: {self.reason}; only the "
            "Python-level policy and process limits apply (see docs/engines.md)"
        )
