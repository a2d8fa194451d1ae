"""Standard-library modules that cannot work in the sandbox, each with the reason.

The one list: the import-sweep test checks that every other name in `sys.stdlib_module_names`
imports inside the sandbox and that these do not; docs/stdlib.md is generated from it.
"""

_NO_PROCESSES = "WASI has no processes"
_NO_TERMINAL = "no terminal in the sandbox"
_NOT_IN_WASI_BUILD = "C library not compiled into CPython's WASI build"
_WINDOWS = "Windows only"
_MACOS = "macOS only"
_NO_USERS = "WASI has no users or groups"
_SUBINTERPRETERS = "subinterpreters need threads, which WASI lacks"

UNSUPPORTED: dict[str, str] = {
    "_bz2": _NOT_IN_WASI_BUILD,
    "bz2": _NOT_IN_WASI_BUILD,
    "_lzma": _NOT_IN_WASI_BUILD,
    "lzma": _NOT_IN_WASI_BUILD,
    "_zstd": _NOT_IN_WASI_BUILD,
    "_ctypes": "no foreign-function interface in WebAssembly (and none is wanted in a sandbox)",
    "ctypes": "no foreign-function interface in WebAssembly (and none is wanted in a sandbox)",
    "_curses": _NO_TERMINAL,
    "_curses_panel": _NO_TERMINAL,
    "curses": _NO_TERMINAL,
    "readline": _NO_TERMINAL,
    "termios": _NO_TERMINAL,
    "tty": _NO_TERMINAL,
    "pty": _NO_TERMINAL,
    "_dbm": _NOT_IN_WASI_BUILD,
    "_gdbm": _NOT_IN_WASI_BUILD,
    "_hashlib": "OpenSSL is not in the WASI build; hashlib uses the built-in hashes",
    "_ssl": "OpenSSL is not in the WASI build (and there is no network)",
    "ssl": "OpenSSL is not in the WASI build (and there is no network)",
    "_interpchannels": _SUBINTERPRETERS,
    "_interpqueues": _SUBINTERPRETERS,
    "_interpreters": _SUBINTERPRETERS,
    "_multiprocessing": _NO_PROCESSES,
    "_posixshmem": _NO_PROCESSES,
    "_posixsubprocess": _NO_PROCESSES,
    "_remote_debugging": _NO_PROCESSES,
    "fcntl": "WASI has no fcntl",
    "mmap": "WASI has no mmap",
    "resource": _NO_PROCESSES,
    "syslog": "no system logger in the sandbox",
    "grp": _NO_USERS,
    "pwd": _NO_USERS,
    "_uuid": "uses the pure-Python uuid instead",
    "_tkinter": "no GUI in the sandbox",
    "tkinter": "no GUI in the sandbox",
    "turtle": "no GUI in the sandbox",
    "turtledemo": "no GUI in the sandbox",
    "idlelib": "no GUI in the sandbox",
    "ensurepip": "no pip in the sandbox (it bundles wheels and runs processes)",
    "venv": "no virtual environments in the sandbox (it runs processes)",
    "_overlapped": _WINDOWS,
    "_winapi": _WINDOWS,
    "_wmi": _WINDOWS,
    "msvcrt": _WINDOWS,
    "nt": _WINDOWS,
    "winreg": _WINDOWS,
    "winsound": _WINDOWS,
    "_scproxy": _MACOS,
}


def markdown_table() -> str:
    rows = ["| module | why it is unavailable |", "| --- | --- |"]
    rows += [f"| `{name}` | {reason} |" for name, reason in sorted(UNSUPPORTED.items())]
    return "\n".join(rows)
