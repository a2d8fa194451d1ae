"""`/tmp` and `/output`: an in-memory file system inside the guest, with a size limit of its own.

Why in the guest (docs/security.md, "Scratch space"): a writable WASI preopen of a host folder
is written by wasmtime's Rust code, which never calls back into the host's Python, so nothing
can bound it (measured: a script with `--memory 64M` wrote 300 MiB to a `rw` mount in 0.46 s).
Here every byte lives in the guest's own linear memory, which `--memory` already bounds, and a
counter gives `ENOSPC` past `--scratch` before memory runs out.

The file system is served at the Python level: `open`/`io.open` (through `_pyio`, whose
`FileIO` works on descriptors via `os.read`/`os.write`/...), and the `os` functions that take a
path or a descriptor (`stat`, `listdir`, `scandir`, `mkdir`, `unlink`, `rename`, ...), so
`tempfile`, `pathlib`, `shutil`, `csv`, `zipfile`, `json` work. C code that opens files itself
(`sqlite3.connect('/tmp/x.db')`) does not see it: WASI has no such folder.
"""

import _pyio
import errno
import io
import os
import posixpath
import stat as stat_module
import sys
import tempfile
import time

SCRATCH_ROOT = "/tmp"
OUTPUT_ROOT = "/output"
INPUT_ROOT = "/input"
ROOTS = (SCRATCH_ROOT, OUTPUT_ROOT, INPUT_ROOT)
# Each file or folder costs this much of the limit besides its bytes: thousands of empty files
# or a deep tree of folders cannot hold guest memory the limit does not count.
NODE_COST = 512
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
MAX_NODES = 100_000
# Descriptors served here: far above what WASI hands out.
FIRST_FD = 1 << 24


def _error(code: int, path: object = None) -> OSError:
    if path is None:
        return OSError(code, os.strerror(code))
    return OSError(code, os.strerror(code), path)


class _Node:
    __slots__ = ("data", "entries", "ino", "links", "mtime", "opened", "version")

    def __init__(self, ino: int, folder: bool) -> None:
        self.ino = ino
        self.entries: dict[str, _Node] | None = {} if folder else None
        self.data = bytearray()
        self.mtime = time.time()
        self.links = 1
        self.opened = 0
        self.version = 0  # counts changes, so a session returns a file again only when changed


def _access(flags: int) -> tuple[bool, bool]:
    """(readable, writable) from open flags (WASI's O_RDONLY and O_WRONLY are separate bits)."""
    if os.O_RDONLY:
        return bool(flags & os.O_RDONLY), bool(flags & os.O_WRONLY)
    access = flags & 3
    return access != os.O_WRONLY, access != os.O_RDONLY


class _Open:
    __slots__ = ("append", "node", "path", "position", "readable", "writable")

    def __init__(self, node: _Node, flags: int, path: str) -> None:
        self.node = node
        self.position = 0
        self.readable, self.writable = _access(flags)
        self.append = bool(flags & os.O_APPEND)
        self.path = path


class ScratchFS:
    """The folders, the open descriptors and what they use; `limit` comes from the host."""

    def __init__(self) -> None:
        self.limit_source = lambda: 64 * 1024 * 1024
        self.input_source = lambda: []
        self.reset()

    def reset(self) -> None:
        for entry in getattr(self, "fds", {}).values():
            entry.node.opened = 0
        self._next_ino = 1
        self.roots = {root: self._new(True) for root in ROOTS}
        self.fds: dict[int, _Open] = {}
        self._next_fd = FIRST_FD
        self.used = 0
        self.nodes = 0
        self.limit: int | None = None
        self.inputs_loaded = False
        # What /output held when it was last handed to the host: path -> (inode, version).
        self.sent: dict[str, tuple[int, int]] = {}

    # -- accounting ---------------------------------------------------------------------------
    def _new(self, folder: bool) -> _Node:
        self._next_ino += 1
        return _Node(self._next_ino, folder)

    def _limit(self) -> int:
        if self.limit is None:
            self.limit = int(self.limit_source())
        return self.limit

    def _charge(self, amount: int, path: object = None) -> None:
        if amount > 0 and self.used + amount > self._limit():
            raise _error(errno.ENOSPC, path)
        self.used += amount

    def _release(self, node: _Node) -> None:
        """A node no longer reachable by name nor descriptor gives its room back."""
        if node.links <= 0 and node.opened <= 0:
            self.used -= len(node.data) + NODE_COST
            self.nodes -= 1
            node.data = bytearray()
            if node.entries:
                for child in list(node.entries.values()):
                    child.links -= 1
                    self._release(child)

    # -- paths --------------------------------------------------------------------------------
    @staticmethod
    def ours(path: object) -> str | None:
        """The normalised path if it lies in /tmp or /output, else None (left to WASI)."""
        if isinstance(path, int):
            return None
        try:
            text = os.fspath(path)
        except TypeError:
            return None
        if isinstance(text, bytes):
            text = os.fsdecode(text)
        if not isinstance(text, str) or not text:
            return None
        if not text.startswith("/"):
            text = posixpath.join(os.getcwd(), text)
        text = posixpath.normpath(text)
        if text.startswith("//"):
            text = "/" + text.lstrip("/")
        for root in ROOTS:
            if text == root or text.startswith(root + "/"):
                return text
        return None

    def _split(self, path: str) -> tuple[str, list[str]]:
        if len(path.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
            raise _error(errno.ENAMETOOLONG, path)
        root = next(r for r in ROOTS if path == r or path.startswith(r + "/"))
        if root == INPUT_ROOT and not self.inputs_loaded:
            self._load_inputs()
        parts = [part for part in path[len(root) :].split("/") if part]
        for part in parts:
            if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
                raise _error(errno.ENAMETOOLONG, path)
        return root, parts

    def lookup(self, path: str) -> _Node:
        root, parts = self._split(path)
        node = self.roots[root]
        for part in parts:
            if node.entries is None:
                raise _error(errno.ENOTDIR, path)
            child = node.entries.get(part)
            if child is None:
                raise _error(errno.ENOENT, path)
            node = child
        return node

    def parent(self, path: str) -> tuple[_Node, str]:
        root, parts = self._split(path)
        if not parts:
            raise _error(errno.EBUSY, path)
        folder = self.lookup(posixpath.dirname(path)) if len(parts) > 1 else self.roots[root]
        if folder.entries is None:
            raise _error(errno.ENOTDIR, path)
        return folder, parts[-1]

    def _load_inputs(self) -> None:
        """The run's input files (`--file`), asked of the host the first time /input is used
        in each run (a session's call may bring files of its own: /input is that call's)."""
        self.inputs_loaded = True
        self.roots[INPUT_ROOT].entries.clear()  # type: ignore[union-attr]
        for guest_path, text in self.input_source():
            parts = [part for part in guest_path[len(INPUT_ROOT) :].split("/") if part]
            folder = self.roots[INPUT_ROOT]
            for part in parts[:-1]:
                folder = folder.entries.setdefault(part, self._new(True))  # type: ignore[union-attr]
            node = self._new(False)
            node.data = bytearray(text.encode("latin-1"))
            folder.entries[parts[-1]] = node  # type: ignore[index]

    @staticmethod
    def _read_only(path: str) -> None:
        if path == INPUT_ROOT or path.startswith(INPUT_ROOT + "/"):
            raise _error(errno.EROFS, path)

    def _create(self, path: str, folder: bool) -> _Node:
        self._read_only(path)
        parent, name = self.parent(path)
        if name in parent.entries:  # type: ignore[operator]
            raise _error(errno.EEXIST, path)
        if self.nodes >= MAX_NODES:
            raise _error(errno.ENOSPC, path)
        self._charge(NODE_COST, path)
        node = self._new(folder)
        self.nodes += 1
        parent.entries[name] = node  # type: ignore[index]
        parent.mtime = time.time()
        return node

    # -- descriptors --------------------------------------------------------------------------
    def open(self, path: str, flags: int) -> int:
        try:
            node = self.lookup(path)
        except FileNotFoundError:
            if not flags & os.O_CREAT:
                raise
            node = self._create(path, folder=False)
        else:
            if flags & os.O_CREAT and flags & os.O_EXCL:
                raise _error(errno.EEXIST, path)
            if _access(flags)[1] or flags & os.O_TRUNC:
                self._read_only(path)
            if node.entries is not None and _access(flags)[1]:
                raise _error(errno.EISDIR, path)
            if flags & os.O_TRUNC and node.entries is None:
                self.used -= len(node.data)
                node.data = bytearray()
                node.version += 1
        fd = self._next_fd
        self._next_fd += 1
        self.fds[fd] = _Open(node, flags, path)
        node.opened += 1
        return fd

    def entry(self, fd: int) -> _Open:
        found = self.fds.get(fd)
        if found is None:
            raise _error(errno.EBADF)
        return found

    def close(self, fd: int) -> None:
        entry = self.fds.pop(fd, None)
        if entry is None:
            raise _error(errno.EBADF)
        entry.node.opened -= 1
        self._release(entry.node)

    def read(self, fd: int, size: int) -> bytes:
        entry = self.entry(fd)
        if entry.node.entries is not None:
            raise _error(errno.EISDIR)
        if not entry.readable:
            raise _error(errno.EBADF)
        data = bytes(entry.node.data[entry.position : entry.position + max(size, 0)])
        entry.position += len(data)
        return data

    def write(self, fd: int, data: bytes) -> int:
        entry = self.entry(fd)
        if not entry.writable:
            raise _error(errno.EBADF)
        node = entry.node
        view = memoryview(data).cast("B")
        if entry.append:
            entry.position = len(node.data)
        end = entry.position + len(view)
        self._charge(max(0, end - len(node.data)), entry.path)
        if entry.position > len(node.data):
            node.data.extend(bytes(entry.position - len(node.data)))
        node.data[entry.position : end] = view
        entry.position = end
        node.mtime = time.time()
        node.version += 1
        return len(view)

    def truncate(self, node: _Node, length: int, path: object = None) -> None:
        if isinstance(path, str):
            self._read_only(path)
        if length < 0:
            raise _error(errno.EINVAL, path)
        if node.entries is not None:
            raise _error(errno.EISDIR, path)
        if length > len(node.data):
            self._charge(length - len(node.data), path)
            node.data.extend(bytes(length - len(node.data)))
        else:
            self.used -= len(node.data) - length
            del node.data[length:]
        node.mtime = time.time()
        node.version += 1

    def stat(self, node: _Node) -> os.stat_result:
        folder = node.entries is not None
        mode = (stat_module.S_IFDIR | 0o700) if folder else (stat_module.S_IFREG | 0o600)
        size = 0 if folder else len(node.data)
        return os.stat_result(
            (mode, node.ino, 0x5C, node.links, 0, 0, size, node.mtime, node.mtime, node.mtime)
        )

    # -- names --------------------------------------------------------------------------------
    def mkdir(self, path: str) -> None:
        self._create(path, folder=True)

    def unlink(self, path: str) -> None:
        self._read_only(path)
        parent, name = self.parent(path)
        node = self.lookup(path)
        if node.entries is not None:
            raise _error(errno.EISDIR, path)
        del parent.entries[name]  # type: ignore[attr-defined]
        node.links -= 1
        self._release(node)

    def rmdir(self, path: str) -> None:
        self._read_only(path)
        parent, name = self.parent(path)
        node = self.lookup(path)
        if node.entries is None:
            raise _error(errno.ENOTDIR, path)
        if node.entries:
            raise _error(errno.ENOTEMPTY, path)
        del parent.entries[name]  # type: ignore[attr-defined]
        node.links -= 1
        self._release(node)

    def rename(self, source: str, target: str) -> None:
        self._read_only(source)
        self._read_only(target)
        node = self.lookup(source)
        if node.entries is not None and (target + "/").startswith(source + "/"):
            raise _error(errno.EINVAL, target)
        old_parent, old_name = self.parent(source)
        new_parent, new_name = self.parent(target)
        existing = new_parent.entries.get(new_name)  # type: ignore[union-attr]
        if existing is node:
            return
        if existing is not None:
            if existing.entries is not None and (node.entries is None or existing.entries):
                raise _error(errno.EISDIR if node.entries is None else errno.ENOTEMPTY, target)
            if existing.entries is None and node.entries is not None:
                raise _error(errno.ENOTDIR, target)
            existing.links -= 1
            self._release(existing)
        del old_parent.entries[old_name]  # type: ignore[attr-defined]
        new_parent.entries[new_name] = node  # type: ignore[index]

    def files(self, root: str) -> list[tuple[str, _Node]]:
        """Every regular file under `root`, as (path relative to it, node), sorted."""
        found: list[tuple[str, _Node]] = []
        stack = [("", self.roots[root])]
        while stack:
            prefix, folder = stack.pop()
            for name, node in sorted(folder.entries.items()):  # type: ignore[union-attr]
                relative = f"{prefix}{name}"
                if node.entries is None:
                    found.append((relative, node))
                else:
                    stack.append((relative + "/", node))
        found.sort()
        return found


FS = ScratchFS()


class _DirEntry:
    """What `os.scandir` yields for a scratch file or folder."""

    def __init__(self, folder: str, name: str, node: _Node) -> None:
        self.name = name
        self.path = posixpath.join(folder, name)
        self._node = node

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return self._node.entries is not None

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return self._node.entries is None

    def is_symlink(self) -> bool:
        return False

    def is_junction(self) -> bool:
        return False

    def inode(self) -> int:
        return self._node.ino

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        return FS.stat(self._node)

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"<DirEntry {self.name!r}>"


class _ScandirIterator:
    def __init__(self, entries: list[_DirEntry]) -> None:
        self._entries = iter(entries)

    def __iter__(self) -> "_ScandirIterator":
        return self

    def __next__(self) -> _DirEntry:
        return next(self._entries)

    def __enter__(self) -> "_ScandirIterator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._entries = iter(())


def _folder(path: str) -> _Node:
    node = FS.lookup(path)
    if node.entries is None:
        raise _error(errno.ENOTDIR, path)
    return node


def install() -> None:
    """Build time: route the file functions through the scratch file system."""
    real = {
        name: getattr(os, name)
        for name in (
            "open",
            "close",
            "read",
            "write",
            "lseek",
            "fstat",
            "ftruncate",
            "fsync",
            "isatty",
            "stat",
            "lstat",
            "listdir",
            "scandir",
            "mkdir",
            "rmdir",
            "unlink",
            "remove",
            "rename",
            "replace",
            "access",
            "chmod",
            "utime",
            "truncate",
            "symlink",
            "link",
            "readlink",
            "readinto",
            "get_inheritable",
            "set_inheritable",
            "get_blocking",
            "set_blocking",
            "chdir",
        )
        if hasattr(os, name)
    }
    real_open = io.open

    def fd_call(name, handler):
        original = real[name]

        def function(fd, *args, **kwargs):
            if isinstance(fd, int) and fd >= FIRST_FD:
                return handler(fd, *args, **kwargs)
            return original(fd, *args, **kwargs)

        function.__name__ = name
        function.__doc__ = original.__doc__
        return function

    def path_call(name, handler):
        original = real[name]

        def function(path, *args, **kwargs):
            mine = FS.ours(path)
            if mine is not None:
                if kwargs.get("dir_fd") is not None:
                    raise NotImplementedError("dir_fd unavailable on this platform")
                kwargs.pop("dir_fd", None)
                kwargs.pop("follow_symlinks", None)
                return handler(mine, *args, **kwargs)
            return original(path, *args, **kwargs)

        function.__name__ = name
        function.__doc__ = original.__doc__
        return function

    def two_paths(name, handler):
        original = real[name]

        def function(source, target, *args, **kwargs):
            mine, theirs = FS.ours(source), FS.ours(target)
            if mine is not None and theirs is not None:
                return handler(mine, theirs)
            if mine is not None or theirs is not None:
                raise _error(errno.EXDEV, source)
            return original(source, target, *args, **kwargs)

        function.__name__ = name
        function.__doc__ = original.__doc__
        return function

    def fd_stat(fd):
        return FS.stat(FS.entry(fd).node)

    def lseek(fd, position, how):
        entry = FS.entry(fd)
        base = {os.SEEK_SET: 0, os.SEEK_CUR: entry.position, os.SEEK_END: len(entry.node.data)}
        if how not in base or base[how] + position < 0:
            raise _error(errno.EINVAL)
        entry.position = base[how] + position
        return entry.position

    def readinto(fd, buffer):
        view = memoryview(buffer).cast("B")
        data = FS.read(fd, len(view))
        view[: len(data)] = data
        return len(data)

    def ftruncate(fd, length):
        entry = FS.entry(fd)
        if not entry.writable:
            raise _error(errno.EINVAL)
        FS.truncate(entry.node, length, entry.path)

    def scandir(path):
        folder = _folder(path)
        return _ScandirIterator(
            [_DirEntry(path, name, node) for name, node in folder.entries.items()]
        )

    def listdir(path):
        return list(_folder(path).entries)

    def access(path, mode, **kwargs):
        try:
            FS.lookup(path)
        except OSError:
            return False
        return True

    def exists(path, *args, **kwargs):
        FS.lookup(path)

    def truncate(path, length):
        FS.truncate(FS.lookup(path), length, path)

    def readlink(path):
        FS.lookup(path)
        raise _error(errno.EINVAL, path)

    def chdir(path):
        raise _error(errno.EPERM, path)

    patched = {
        "open": path_call("open", lambda path, flags, mode=0o777: FS.open(path, flags)),
        "close": fd_call("close", FS.close),
        "read": fd_call("read", FS.read),
        "write": fd_call("write", FS.write),
        "lseek": fd_call("lseek", lseek),
        "fstat": fd_call("fstat", fd_stat),
        "ftruncate": fd_call("ftruncate", ftruncate),
        "fsync": fd_call("fsync", lambda fd: FS.entry(fd) and None),
        "isatty": fd_call("isatty", lambda fd: bool(FS.entry(fd)) and False),
        "stat": path_call("stat", lambda path: FS.stat(FS.lookup(path))),
        "lstat": path_call("lstat", lambda path: FS.stat(FS.lookup(path))),
        "listdir": path_call("listdir", listdir),
        "scandir": path_call("scandir", scandir),
        "mkdir": path_call("mkdir", lambda path, mode=0o777: FS.mkdir(path)),
        "rmdir": path_call("rmdir", FS.rmdir),
        "unlink": path_call("unlink", FS.unlink),
        "remove": path_call("remove", FS.unlink),
        "rename": two_paths("rename", FS.rename),
        "replace": two_paths("replace", FS.rename),
        "access": path_call("access", access),
        "chmod": path_call("chmod", lambda path, mode: exists(path)),
        "utime": path_call("utime", exists),
        "truncate": path_call("truncate", truncate),
        "readlink": path_call("readlink", readlink),
        "chdir": path_call("chdir", chdir),
    }
    if "readinto" in real:
        patched["readinto"] = fd_call("readinto", readinto)
    for name in ("get_inheritable", "get_blocking"):
        if name in real:
            patched[name] = fd_call(name, lambda fd: bool(FS.entry(fd)) and False)
    for name in ("set_inheritable", "set_blocking"):
        if name in real:
            patched[name] = fd_call(name, lambda fd, value: FS.entry(fd) and None)
    for name_of_link in ("symlink", "link"):
        if name_of_link in real:
            original = real[name_of_link]

            def refuse(source, target, *args, _original=original, **kwargs):
                if FS.ours(target) is not None or FS.ours(source) is not None:
                    raise _error(errno.EPERM, target)
                return _original(source, target, *args, **kwargs)

            refuse.__name__ = name_of_link
            patched[name_of_link] = refuse
    for name, function in patched.items():
        setattr(os, name, function)

    def open_(
        file,
        mode="r",
        buffering=-1,
        encoding=None,
        errors=None,
        newline=None,
        closefd=True,
        opener=None,
    ):
        if (isinstance(file, int) and file >= FIRST_FD) or FS.ours(file) is not None:
            if isinstance(file, int):
                return _pyio.open(file, mode, buffering, encoding, errors, newline, closefd, opener)
            return _pyio.open(
                os.fspath(file), mode, buffering, encoding, errors, newline, closefd, opener
            )
        return real_open(file, mode, buffering, encoding, errors, newline, closefd, opener)

    open_.__doc__ = real_open.__doc__
    open_.__name__ = "open"
    io.open = open_
    import builtins

    builtins.open = open_
    tempfile.tempdir = SCRATCH_ROOT
    replaced = {id(real[name]): function for name, function in patched.items()}
    replaced[id(real_open)] = open_
    _rebind(replaced)


def _rebind(replaced: dict) -> None:
    """Modules that kept their own reference to a replaced function (`_builtin_open = open`,
    `def cleanup(self, unlink=_os.unlink)`) get the replacement too."""
    import types

    def swap_defaults(function) -> None:
        for attribute in ("__defaults__", "__kwdefaults__"):
            values = getattr(function, attribute, None)
            if isinstance(values, tuple) and any(id(v) in replaced for v in values):
                setattr(function, attribute, tuple(replaced.get(id(v), v) for v in values))
            elif isinstance(values, dict) and any(id(v) in replaced for v in values.values()):
                setattr(function, attribute, {k: replaced.get(id(v), v) for k, v in values.items()})

    for name, module in list(sys.modules.items()):
        if module is None or name in ("os", "posix", "io", "_io", "builtins", __name__):
            continue
        namespace = getattr(module, "__dict__", {})
        for key, value in list(namespace.items()):
            if id(value) in replaced:
                namespace[key] = replaced[id(value)]
            elif isinstance(value, types.FunctionType):
                swap_defaults(value)
            elif isinstance(value, type) and getattr(value, "__module__", None) == name:
                for member in vars(value).values():
                    if isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    if isinstance(member, types.FunctionType):
                        swap_defaults(member)


# The most one `output-file` call carries (as `write-output`: the host copies a call's string).
_HOST_CALL_BYTES = 64 * 1024


def begin_run(fresh: bool) -> None:
    """Each run asks the host for its limit again; a run that is not a session's next call
    starts with empty folders."""
    if fresh and (FS.nodes or FS.fds):
        FS.reset()
    FS.limit = None
    FS.inputs_loaded = False
    tempfile.tempdir = SCRATCH_ROOT


def send_outputs(send) -> None:
    """Hand the files in /output that are new or changed since they were last handed over (a
    session's earlier call returned the others) to the host, in pieces; `send(name, data,
    first)` returns False when the host keeps no more of that file."""
    if not FS.roots[OUTPUT_ROOT].entries:
        FS.sent = {}
        return
    current = FS.files(OUTPUT_ROOT)
    sent, FS.sent = FS.sent, {name: (node.ino, node.version) for name, node in current}
    for name, node in current:
        if sent.get(name) == (node.ino, node.version):
            continue
        view = memoryview(node.data)
        if not send(name, "", True):
            continue
        for start in range(0, len(view), _HOST_CALL_BYTES):
            if not send(name, str(view[start : start + _HOST_CALL_BYTES], "latin-1"), False):
                break
