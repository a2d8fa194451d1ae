"""PyInstaller support: the hook directory (registered by the `pyinstaller40` entry point in
pyproject.toml, as yt-dlp does) and the list of modules the frozen CLI never imports."""

import sys
from importlib.util import find_spec
from pathlib import Path

#: Set by `packaging/build_binary.py` when wasmtime's native library and the guest travel in a
#: compressed payload extracted once into the user cache (see `payload_runtime.py`) instead of
#: being collected as files that a onefile binary would unpack on every start.
PAYLOAD_VARIABLE = "AGENTBOX_PYINSTALLER_PAYLOAD"

#: Modules that PyInstaller's analysis reaches through optional imports but that the CLI never
#: imports (checked with `python -X importtime -m agentbox run -`). Each one left out is a file
#: less to unpack on every start of a onefile binary.
EXCLUDED_MODULES: tuple[str, ...] = (
    "tkinter",
    "_tkinter",
    "turtle",
    "turtledemo",
    "idlelib",
    "unittest",
    "doctest",
    "pydoc",
    "pydoc_data",
    "lib2to3",
    "ensurepip",
    "venv",
    "distutils",
    "setuptools",
    "pkg_resources",
    "pip",
    "test",
    "curses",
    "readline",
    "sqlite3",
    "xmlrpc",
    "ftplib",
    "imaplib",
    "poplib",
    "smtplib",
    "nntplib",
    "telnetlib",
    "mailbox",
    "multiprocessing",
    "ray",  # `agentbox batch --ray` needs the Python package and its `ray` extra
    "PyInstaller",
    # Test tools that other packages' optional plugins mention (pydantic's hypothesis plugin).
    "hypothesis",
    "_pytest",
    "pytest",
    # The type checker, when installed in the building environment: pydantic's mypy plugin
    # imports it (with ~70 compiled modules, curses and more, all unpacked on every start).
    "mypy",
    "mypyc",
    # Optional imports of runtime dependencies that reach packages only the development
    # environment has (the test group installs PyYAML, pytest brings Pygments). The build fails
    # on any module from outside agentbox's runtime dependencies (packaging/licenses.py).
    # uvicorn.config imports yaml only to read a `.yaml` log config, which `agentbox serve`
    # never passes.
    "yaml",
    # httpx2's `httpx` command-line client, which httpx2/__init__.py imports only when
    # `httpx2.main` is accessed; it imports click, pygments and rich (httpx2's `cli` extra).
    "httpx2._main",
    # tqdm's optional notifiers (tqdm.contrib.telegram, .discord) import requests, which only
    # the development environment has (Ray brings it); `agentbox batch` uses tqdm's plain bar.
    "requests",
    "urllib3",
    "certifi",
    "charset_normalizer",
)

#: Extension modules `agentbox run` never imports (most are for `agentbox mcp`): a onefile build
#: carries them in its payload, unpacked once, instead of unpacking them on every start.
LAZY_EXTENSIONS: tuple[str, ...] = (
    "cryptography.hazmat.bindings._rust",
    "pydantic_core._pydantic_core",
    "_cffi_backend",
    "rpds.rpds",
    "unicodedata",
    "_decimal",
    "pyexpat",
    "_elementtree",
    "_pickle",
    "_multibytecodec",
    "_codecs_cn",
    "_codecs_hk",
    "_codecs_iso2022",
    "_codecs_jp",
    "_codecs_kr",
    "_codecs_tw",
)

#: OpenSSL's extension modules (`agentbox run` imports neither; `mcp`, `serve` and skills files
#: may). On Linux they travel in the payload too, with the libraries they link (libcrypto 4.7 MB,
#: libssl 0.7 MB), which the payload's finder loads first from the same folder. macOS and
#: Windows keep them in the bundle: their loaders find a library by other rules.
OPENSSL_EXTENSIONS: tuple[str, ...] = ("_ssl", "_hashlib") if sys.platform == "linux" else ()

#: The libraries of OPENSSL_EXTENSIONS (soname prefixes) in load order: libssl links libcrypto.
OPENSSL_LIBRARIES: tuple[str, ...] = ("libcrypto.so", "libssl.so")


def get_hook_dirs() -> list[str]:
    return [str(Path(__file__).parent)]


def wasmtime_library() -> Path:
    """wasmtime-py's native library (`wasmtime/<os>-<arch>/_libwasmtime.so` and the like)."""
    spec = find_spec("wasmtime")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("wasmtime is not installed")
    package = Path(spec.submodule_search_locations[0])
    patterns = ("*/_libwasmtime.so", "*/_libwasmtime.dylib", "*/_wasmtime.dll")
    matches = sorted(path for pattern in patterns for path in package.glob(pattern))
    if len(matches) != 1:
        raise RuntimeError(f"expected one wasmtime library in {package}, found {matches}")
    return matches[0]


def guest_files() -> list[Path]:
    """The built guest and its metadata; the build fails early if the guest is not built."""
    folder = Path(__file__).parent.parent / "guest"
    # data_runner.json: the runner modules the data image takes when it is installed.
    files = [folder / "sandbox.wasm", folder / "sandbox.json", folder / "data_runner.json"]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise RuntimeError(f"the guest is not built ({', '.join(missing)}): run `make guest`")
    return files
