"""Smoke-test a built agentbox binary: `python packaging/smoke.py dist/agentbox-linux-x86_64`.

Every check runs the binary as a user would, with an empty HOME and an empty AGENTBOX_CACHE_DIR
(temporary folders shared by the checks of one session, so the first check pays the compile and
the later ones are warm runs). Exits 1 with one line per failed check. tests/binary/ runs the
same checks through pytest.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HOST_SECRET = "AGENTBOX_SMOKE_HOST_SECRET"
# How long a check that should end on its own may take before it counts as hung.
HANG_GUARD_SECONDS = 120


class SmokeFailure(AssertionError):
    pass


@dataclass
class Session:
    """The binary and the clean environment its checks run in."""

    binary: Path
    home: Path
    cache: Path

    def env(self) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "USERPROFILE": str(self.home),
            "AGENTBOX_CACHE_DIR": str(self.cache),
            HOST_SECRET: "leaked",
        }
        if "SYSTEMROOT" in os.environ:  # Windows cannot start a process without it
            env["SYSTEMROOT"] = os.environ["SYSTEMROOT"]
        return env

    def run(
        self, *args: str, stdin: str = "", timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args],
            input=stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=self.env(),
            cwd=self.home,
            timeout=timeout,
        )


def expect(
    result: subprocess.CompletedProcess[str], code: int = 0, stdout: str | None = None
) -> None:
    details = f"\n  stdout: {result.stdout[-2000:]!r}\n  stderr: {result.stderr[-2000:]!r}"
    if result.returncode != code:
        raise SmokeFailure(f"exit code {result.returncode}, expected {code}{details}")
    if stdout is not None and result.stdout != stdout:
        raise SmokeFailure(f"stdout {result.stdout!r}, expected {stdout!r}{details}")


def expect_denied(result: subprocess.CompletedProcess[str], attempt: str) -> None:
    """The attack script ran and printed `denied ...`: the sandbox refused the attempt."""
    expect(result)
    if not result.stdout.startswith("denied"):
        raise SmokeFailure(f"the guest {attempt}: {result.stdout!r}")


def check_first_run(session: Session) -> None:
    """Run with an empty cache: compiles, says so on stderr, prints the answer."""
    started = time.perf_counter()
    result = session.run("run", "-", stdin="print(1+1)\n")
    expect(result, stdout="2\n")
    if "compiling" not in result.stderr:
        raise SmokeFailure(f"no progress line on the first run: {result.stderr!r}")
    print(f"  first run: {time.perf_counter() - started:.1f} s", file=sys.stderr)


def check_warm_run(session: Session) -> None:
    started = time.perf_counter()
    result = session.run("run", "-", stdin="print(1+1)\n")
    expect(result, stdout="2\n")
    if result.stderr:
        raise SmokeFailure(f"a warm run wrote to stderr: {result.stderr!r}")
    print(f"  warm run: {time.perf_counter() - started:.2f} s", file=sys.stderr)


def check_script_file_with_args(session: Session) -> None:
    script = session.home / "argv.py"
    script.write_text("import sys\nprint(sys.argv[1:])\n")
    result = session.run("run", str(script), "one", "--two", "3")
    expect(result, stdout="['one', '--two', '3']\n")


STDLIB_SCRIPT = """
import asyncio, csv, decimal, io, json, re, sqlite3, zoneinfo
from email.parser import Parser
db = sqlite3.connect(":memory:")
db.execute("create table t (x)")
db.execute("insert into t values (41)")
total = db.execute("select x + 1 from t").fetchone()[0]
async def answer():
    await asyncio.sleep(0)
    return decimal.Decimal("0.1") + decimal.Decimal("0.2")
rows = list(csv.reader(io.StringIO("a,b\\n1,2\\n")))
subject = Parser().parsestr("Subject: hi\\n\\nbody")["subject"]
zone = zoneinfo.ZoneInfo.__name__  # the guest has no tz database: ZoneInfo("UTC") fails
print(json.dumps([total, str(asyncio.run(answer())), rows[1], subject, zone,
                  re.sub(r"\\d", "#", "a1b2")]))
"""


def check_stdlib(session: Session) -> None:
    result = session.run("run", "-", stdin=STDLIB_SCRIPT)
    expect(result)
    expected = [42, "0.3", ["1", "2"], "hi", "ZoneInfo", "a#b#"]
    if json.loads(result.stdout) != expected:
        raise SmokeFailure(f"stdlib script printed {result.stdout!r}, expected {expected}")


def check_json(session: Session) -> None:
    result = session.run("run", "--json", "-", stdin="print('hi')\n")
    expect(result)
    data = json.loads(result.stdout)
    missing = {"stdout", "exit_code", "duration_ms", "limit", "truncated"} - data.keys()
    if missing:
        raise SmokeFailure(f"--json lacks {sorted(missing)}: {data}")
    if data["stdout"] != "hi\n" or data["exit_code"] != 0 or data["truncated"]:
        raise SmokeFailure(f"unexpected --json result: {data}")
    if not isinstance(data["duration_ms"], int | float) or data["limit"] is not None:
        raise SmokeFailure(f"unexpected --json duration/limit: {data}")


def check_no_host_environment(session: Session) -> None:
    script = f"import os\nprint(os.environ.get({HOST_SECRET!r}, 'absent'))\n"
    expect(session.run("run", "-", stdin=script), stdout="absent\n")


def check_no_host_files(session: Session) -> None:
    script = (
        "try:\n    open('/etc/passwd').read()\n    print('read')\n"
        "except OSError as error:\n    print('denied', type(error).__name__)\n"
    )
    expect_denied(session.run("run", "-", stdin=script), "read /etc/passwd")


def check_no_network(session: Session) -> None:
    import socket

    with socket.socket() as server:  # a real listener, so only the sandbox can refuse
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        script = (
            "import socket\ntry:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "    print('connected')\n"
            "except OSError as error:\n    print('denied', type(error).__name__)\n"
        )
        result = session.run("run", "-", stdin=script)
    expect_denied(result, "connected to 127.0.0.1")


def check_timeout(session: Session) -> None:
    """A hang guard, not a speed check: a limit that did not fire fails by TimeoutExpired."""
    result = session.run(
        "run", "--timeout", "1", "-", stdin="while True:\n    pass\n", timeout=HANG_GUARD_SECONDS
    )
    expect(result, code=124)
    if "timed out after 1 s" not in result.stderr:
        raise SmokeFailure(f"--timeout 1 reported {result.stderr!r}")


def check_fallback_engine(session: Session) -> None:
    """The restricted engine's child process is the binary itself when frozen."""
    result = session.run("run", "--engine", "restricted", "-", stdin="print(sum(range(10)))\n")
    expect(result, stdout="45\n")


def check_version(session: Session) -> None:
    result = session.run("--version")
    expect(result)
    if "agentbox" not in result.stdout:
        raise SmokeFailure(f"--version printed {result.stdout!r}")


def check_info(session: Session) -> None:
    result = session.run("info", "--json")
    expect(result)
    data = json.loads(result.stdout)
    if not data.get("guest_python", "").startswith("3.") or not data.get("wasmtime"):
        raise SmokeFailure(f"agentbox info: {data}")


def check_mcp(session: Session) -> None:
    """`agentbox mcp` as a client app starts it: JSON-RPC lines over pipes."""
    requests = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "smoke", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "run_python", "arguments": {"code": "print(6 * 7)"}},
        },
    ]
    with tempfile.TemporaryFile() as stderr:
        server = subprocess.Popen(
            [str(session.binary), "mcp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=session.env(),
            cwd=session.home,
        )
        assert server.stdin is not None and server.stdout is not None
        try:
            server.stdin.write(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
            server.stdin.flush()
            replies = [json.loads(server.stdout.readline() or "null") for _ in range(2)]
        finally:
            server.stdin.close()
            server.wait(timeout=60)
            server.stdout.close()
        stderr.seek(0)
        errors = stderr.read().decode(errors="replace")[-2000:]
    result = (replies[1] or {}).get("result", {})
    if result.get("structuredContent", {}).get("stdout") != "42\n" or server.returncode != 0:
        raise SmokeFailure(f"agentbox mcp replied {replies}, exit {server.returncode}: {errors!r}")


def check_changed_payload_is_unpacked_again(session: Session) -> None:
    """A same-size library swapped into the unpacked payload (issue 12: a script with a `rw`
    mount of the cache once did this) is replaced before the binary loads it; the cache and
    payload folders are private. Nothing to check for a onedir build (no payload)."""
    libraries = [path for path in session.cache.glob("binary-*/wasmtime/*/*") if path.is_file()]
    if not libraries:
        return
    library = libraries[0]
    if os.name != "nt":
        for folder in (session.cache, library.parent.parent.parent, library.parent):
            if folder.stat().st_mode & 0o077:
                raise SmokeFailure(f"{folder} is not private: {oct(folder.stat().st_mode)}")
    original = library.read_bytes()
    swapped = library.with_name("swapped")
    swapped.write_bytes(bytes(len(original)))
    os.replace(swapped, library)
    result = session.run("run", "-", stdin="print(1+1)\n")
    expect(result, stdout="2\n")
    if "unpacking it again" not in result.stderr or library.read_bytes() != original:
        raise SmokeFailure(f"the swapped library was not replaced: {result.stderr!r}")


SHARED_LIBRARY = re.compile(r"\.(so|dylib|dll|pyd)$|\.so\.")
#: A section of `agentbox licenses`: rule, title, `License:`, optional wrapped `Files:`, rule.
LICENSE_SECTION = re.compile(
    r"^={78}\n(?P<title>[^\n]+)\nLicense: [^\n]*\n(?P<files>Files: [^\n]*(?:\n  [^\n]*)*\n)?={78}$",
    re.MULTILINE,
)


@dataclass
class Contents:
    """What a PyInstaller binary carries, read from its archive (and, for a onedir build, its
    `_internal` folder), plus the payload its index lists."""

    modules: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    payload: dict[str, int] = field(default_factory=dict)
    payload_extensions: dict[str, str] = field(default_factory=dict)

    def shared_libraries(self) -> set[str]:
        """Base names of the shared libraries and extension modules, bundle and payload."""
        names = {Path(name).name for name in (*self.files, *self.payload)}
        return {name for name in names if SHARED_LIBRARY.search(name)}

    def distributions(self) -> set[str]:
        """The installed distributions (normalized names) the carried modules, extension
        modules and metadata folders belong to, per this environment's importlib.metadata."""
        from importlib.metadata import packages_distributions

        owners = packages_distributions()
        tops = {name.split(".")[0] for name in (*self.modules, *self.payload_extensions)}
        found = {_normalize(dist) for top in tops for dist in owners.get(top, [])}
        for name in self.files:  # "wasmtime-50.0.1.dist-info/METADATA"
            folder = name.split("/")[0]
            for suffix in (".dist-info", ".egg-info"):
                if folder.endswith(suffix):
                    found.add(_normalize(folder.removesuffix(suffix).rsplit("-", 1)[0]))
        return found - {"agentbox-wasm"}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def binary_contents(binary: Path) -> Contents:
    """Read the binary's PyInstaller archive (needs PyInstaller, as the build does)."""
    try:
        from PyInstaller.archive.readers import CArchiveReader
    except ImportError:
        raise SmokeFailure(
            "reading the binary's contents needs PyInstaller (pip install --group binary)"
        ) from None
    contents = Contents()
    archive = CArchiveReader(str(binary))
    for name, (*_, typecode) in archive.toc.items():
        if typecode == "z":
            pyz = archive.open_embedded_archive(name)
            contents.modules |= set(pyz.toc)
            if "_agentbox_payload_index" in pyz.toc:
                index: dict[str, dict[str, object]] = {}
                exec(pyz.extract("_agentbox_payload_index"), index)  # the build's own module
                contents.payload = {name: int(str(size)) for name, size in index["FILES"].items()}
                contents.payload_extensions = {k: str(v) for k, v in index["EXTENSIONS"].items()}
        elif typecode in ("m", "M", "s"):
            contents.modules.add(name)
        elif typecode in ("b", "x"):
            contents.files.add(name)
    internal = binary.parent / "_internal"
    if internal.is_dir():  # onedir: the collected files sit beside the executable
        contents.files |= {
            path.relative_to(internal).as_posix() for path in internal.rglob("*") if path.is_file()
        }
    return contents


def parse_licenses(text: str) -> dict[str, set[str]]:
    """`agentbox licenses`' output: section title -> the file names its `Files:` lists."""
    sections = {}
    for match in LICENSE_SECTION.finditer(text):
        listed = (match["files"] or "").removeprefix("Files: ")
        sections[match["title"]] = {name.strip() for name in listed.split(",") if name.strip()}
    return sections


def check_licenses(session: Session) -> None:
    """`agentbox licenses` lists every distribution and shared library the binary carries, and
    names the guest's CPython with the version the guest itself reports."""
    result = session.run("licenses")
    expect(result)
    sections = parse_licenses(result.stdout)
    if not sections:
        raise SmokeFailure(f"agentbox licenses printed no sections: {result.stdout[:500]!r}")
    contents = binary_contents(session.binary)
    titled = {_normalize(title.split()[0]) for title in sections}
    missing = sorted(contents.distributions() - titled)
    listed = set().union(*sections.values())
    unlisted = sorted(contents.shared_libraries() - listed)
    if missing or unlisted:
        raise SmokeFailure(
            f"agentbox licenses lacks distributions {missing} and shared libraries {unlisted}"
        )
    guest = json.loads(session.run("info", "--json").stdout)["guest_python"]
    guest_titles = [title for title in sections if "guest's Python" in title]
    if guest_titles != [f"CPython {guest} for WASI (the guest's Python)"]:
        raise SmokeFailure(f"the guest runs CPython {guest}; the licenses name {guest_titles}")


def check_runtime_dependencies_only(session: Session) -> None:
    """Every distribution in the binary is a runtime dependency of agentbox (with the extras
    whose commands the binary has) or PyInstaller's: nothing leaked from the dev environment."""
    from licenses import BUILD_TOOLS, runtime_distributions

    allowed = {_normalize(dist.metadata["Name"]) for dist in runtime_distributions()}
    contents = binary_contents(session.binary)
    leaked = sorted(contents.distributions() - allowed - set(BUILD_TOOLS))
    if leaked:
        raise SmokeFailure(f"the binary carries packages that are no runtime dependency: {leaked}")
    dev_only = sorted(
        name for name in contents.modules if name.split(".")[0] in ("yaml", "pygments", "pytest")
    )
    if dev_only:
        raise SmokeFailure(f"the binary carries dev-only modules: {dev_only[:10]}")


#: Run after check_first_run, which fills the cache: these are warm runs, in any order.
WARM_CHECKS: tuple[Callable[[Session], None], ...] = (
    check_warm_run,
    check_script_file_with_args,
    check_stdlib,
    check_json,
    check_no_host_environment,
    check_no_host_files,
    check_no_network,
    check_timeout,
    check_fallback_engine,
    check_version,
    check_info,
    check_mcp,
    check_changed_payload_is_unpacked_again,
    check_licenses,
    check_runtime_dependencies_only,
)
CHECKS = (check_first_run, *WARM_CHECKS)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: smoke.py BINARY", file=sys.stderr)
        return 2
    binary = Path(arguments[0]).resolve()
    if not binary.is_file():
        print(f"smoke: no binary at {binary}", file=sys.stderr)
        return 2
    failures = []
    with tempfile.TemporaryDirectory(prefix="agentbox-smoke-") as scratch:
        session = Session(binary, Path(scratch) / "home", Path(scratch) / "cache")
        session.home.mkdir()
        for check in CHECKS:
            try:
                check(session)
            except (SmokeFailure, subprocess.TimeoutExpired) as error:
                failures.append(f"{check.__name__}: {error}")
                print(f"FAIL {check.__name__}: {error}", file=sys.stderr)
            else:
                print(f"ok   {check.__name__}", file=sys.stderr)
    if failures:
        print(f"smoke: {len(failures)} of {len(CHECKS)} checks failed", file=sys.stderr)
        return 1
    print(f"smoke: all {len(CHECKS)} checks passed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
