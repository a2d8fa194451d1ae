"""Introspection: this is real CPython, so `__subclasses__()` walks, `gc`, `sys.modules`,
`importlib` and `__builtins__` tricks all "work" inside the guest. What they reach is the
guest's own interpreter: nothing found that way touches the host, and nothing survives a run."""

import base64
import textwrap
import uuid
from pathlib import Path

import pytest

from agentbox import ExitCode, Sandbox
from tests.helpers import MARKER_ATTACK

ROOT = Path(__file__).resolve().parents[2]


WALKS = {
    "os._wrap_close globals -> popen": (
        "cls = next(c for c in object.__subclasses__() if c.__name__ == '_wrap_close')\n"
        "cls.__init__.__globals__['popen']('touch ' + MARKER).read()"
    ),
    "os._wrap_close globals -> open /etc/passwd": (
        "cls = next(c for c in object.__subclasses__() if c.__name__ == '_wrap_close')\n"
        "g = cls.__init__.__globals__\n"
        "g['read'](g['open']('/etc/passwd', g['O_RDONLY']), 100)"
    ),
    "subprocess.Popen via subclasses": (
        "import subprocess\n"
        "cls = next(c for c in object.__subclasses__() if c.__name__ == 'Popen')\n"
        "cls(['touch', MARKER])"
    ),
    "_io.FileIO via subclasses": (
        "def every(cls):\n"
        "    for sub in cls.__subclasses__():\n"
        "        yield sub\n"
        "        yield from every(sub)\n"
        "cls = next(c for c in every(object) if c.__name__ == 'FileIO')\n"
        "cls('/etc/passwd').read()"
    ),
    "BuiltinImporter -> fresh posix": (
        "cls = next(c for c in object.__subclasses__() if c.__name__ == 'BuiltinImporter')\n"
        "import importlib.machinery as m\n"
        "posix = cls.create_module(m.ModuleSpec('posix', cls, origin='built-in'))\n"
        "getattr(posix, 'system', None) or getattr(posix, 'fork')()"
    ),
    "posix via sys.modules": "sys.modules['posix'].open('/etc/passwd', 0)",
    "reloaded os": ("import importlib, os\nos = importlib.reload(os)\nos.listdir('/etc')"),
    "os re-imported from scratch": (
        "for name in [n for n in sys.modules if n in ('os', 'posix', 'subprocess')]:\n"
        "    del sys.modules[name]\n"
        "import subprocess\nsubprocess.run(['touch', MARKER])"
    ),
    "SourceFileLoader on a host file": (
        "import importlib.machinery as m\nm.SourceFileLoader('passwd', '/etc/passwd').load_module()"
    ),
    "host package on sys.path": (f"sys.path.insert(0, {str(ROOT)!r})\nimport agentbox.sandbox"),
    "zipimport of a host file": "import zipimport; zipimport.zipimporter('/etc/passwd')",
    "code object with a host path": (
        "exec(compile('open(\"/etc/passwd\").read()', '/etc/passwd', 'exec'))"
    ),
    "frame walk to the runner": (
        "f = sys._getframe()\n"
        "while f.f_back: f = f.f_back\n"
        "f.f_globals['open']('/etc/passwd').read()"
    ),
    "io.open_code": "import io; io.open_code('/etc/passwd').read()",
    "linecache of a host file": (
        "import linecache\nassert linecache.getlines('/etc/passwd'), 'empty'"
    ),
}


@pytest.mark.parametrize("statement", WALKS.values(), ids=WALKS.keys())
def test_introspection_does_not_reach_the_host(
    sandbox: Sandbox, tmp_path: Path, statement: str
) -> None:
    marker = tmp_path / "marker"
    result = sandbox.run(MARKER_ATTACK, args=[str(marker), statement])
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stdout.startswith("BLOCKED "), (result.stdout, result.stderr)
    assert "root:" not in result.stdout
    assert not marker.exists()


def test_subclass_walks_run_and_find_the_usual_gadgets(sandbox: Sandbox) -> None:
    """The walks themselves work (it is real CPython): the guarantee is what they can reach."""
    code = (
        "names = {c.__name__ for c in ().__class__.__base__.__subclasses__()}\n"
        "print(sorted(n for n in ('_wrap_close', 'Popen', 'BuiltinImporter') if n in names))"
    )
    result = sandbox.run(code)
    assert result.stdout == "['BuiltinImporter', 'Popen', '_wrap_close']\n", result.stderr


def test_guest_memory_holds_no_host_secret_or_path(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Scan every object the guest's collector knows for host data: a fresh secret in the host
    environment, the repository's path and a temporary path. The needles are built at run time
    from base64 so the script's own source cannot match."""
    secret = f"agentbox-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("AGENTBOX_TEST_SECRET", secret)
    (tmp_path / "secret.txt").write_text(secret)
    needles = [secret, str(ROOT), str(tmp_path)]
    encoded = [base64.b64encode(n.encode()).decode() for n in needles]
    code = textwrap.dedent(
        """
        import base64, gc, sys
        NEEDLES = [base64.b64decode(n).decode() for n in sys.argv[1:]]
        ARGV = sys.argv
        sys.argv = []
        found = set()

        def check(value):
            if isinstance(value, bytes | bytearray):
                value = bytes(value).decode("latin-1")
            if isinstance(value, str):
                for needle in NEEDLES:
                    if needle is not value and needle in value:
                        found.add(needle[:12])

        for obj in gc.get_objects():
            if obj is NEEDLES or obj is ARGV:
                continue
            try:
                if isinstance(obj, dict):
                    for key, value in list(obj.items()):
                        check(key)
                        check(value)
                elif isinstance(obj, list | tuple | set | frozenset):
                    for value in list(obj):
                        check(value)
                else:
                    for value in vars(obj).values():
                        check(value)
            except Exception:
                pass
        for module in list(sys.modules.values()):
            for value in list(getattr(module, "__dict__", {}).values()):
                check(value)
        print("found", sorted(found))
        """
    )
    result = sandbox.run(code, args=encoded)
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stdout == "found []\n"
    # Positive control: the same scan does find the secret once the host passes it on purpose.
    control = Sandbox(timeout=20, env={"GIVEN": secret}).run(code, args=encoded)
    assert control.stdout == f"found {[secret[:12]]}\n", control.stderr


def test_builtins_tampering_does_not_survive_the_run(image_sandbox: Sandbox) -> None:
    code = textwrap.dedent(
        """
        import builtins, json, sys
        builtins.print = lambda *a, **k: None
        builtins.open = builtins.__import__ = None
        json.dumps = lambda *a, **k: "forged"
        runner = sys.modules.get("agentbox_guest.runner")
        if runner is not None:
            runner.SCRIPT_ERROR_EXIT = 0
            runner.ScriptRunner.run = lambda *a, **k: (0, "")
        sys.modules["os"] = None
        """
    )
    assert image_sandbox.run(code).exit_code == ExitCode.OK
    result = image_sandbox.run(
        "import json, os\nprint(json.dumps([1]), os.sep)\nraise ValueError('x')"
    )
    assert result.stdout == "[1] /\n"
    assert result.exit_code == ExitCode.SCRIPT_ERROR
    assert "ValueError: x" in result.stderr


def test_globals_and_modules_do_not_leak_between_runs(image_sandbox: Sandbox) -> None:
    first = image_sandbox.run("import re, sys\nre.LEFT = 'from run 1'\nsys.left = 1\nLEFT = 1")
    assert first.exit_code == ExitCode.OK
    code = "import re, sys\nprint(hasattr(re, 'LEFT'), hasattr(sys, 'left'), 'LEFT' in globals())"
    assert image_sandbox.run(code).stdout == "False False False\n"


def test_guest_cannot_forge_the_host_result_structure(sandbox: Sandbox) -> None:
    """Writing to the raw stdio descriptors or closing them only changes the script's output."""
    code = textwrap.dedent(
        """
        import os, sys
        os.write(1, b"raw out\\n")
        os.write(2, b"raw err\\n")
        sys.stdout.flush()
        os.close(1)
        os.close(2)
        """
    )
    result = sandbox.run(code)
    assert result.stdout == "raw out\n"
    assert result.stderr.startswith("raw err\n")
    assert sandbox.run("print(1)").stdout == "1\n"


def test_the_raw_bridge_reaches_only_registered_skills() -> None:
    """The guest's way out is the `host` interface: `call-skill`/`list-skills` called raw, past
    the `skills` module, still reach only the skills this Sandbox registered."""
    calls: list[str] = []

    def echo(text: str) -> str:
        calls.append(text)
        return text

    box = Sandbox(timeout=20, skills=[echo])
    code = textwrap.dedent(
        """
        from wit_world.imports import host
        print(host.list_skills())
        for name in ("echo", "open", "os.system", "__import__", "", "echo\\0", "../echo"):
            try:
                print(name, "->", host.call_skill(name, '{"text": "hi"}'))
            except Exception as error:
                print(name, "-> refused", type(error).__name__)
        """
    )
    result = box.run(code)
    assert result.exit_code == ExitCode.OK, result.stderr
    lines = result.stdout.splitlines()
    assert '"echo"' in lines[0]
    assert lines[1] == 'echo -> "hi"'
    assert all(line.endswith("-> refused Err") for line in lines[2:]), lines
    assert calls == ["hi"]
    assert Sandbox(timeout=20).run(code).stdout.splitlines()[0] == "[]"


def test_the_raw_output_call_only_writes_the_scripts_own_output(sandbox: Sandbox) -> None:
    """`write-output` called raw with what the guest's streams never send (text beyond latin-1,
    a huge chunk) lands in the capture, capped, and the host keeps serving."""
    code = textwrap.dedent(
        """
        from wit_world.imports.host import OutputTarget, write_output
        write_output(OutputTarget.STDOUT, "caf\\u00e9 \\u20ac\\n")
        write_output(OutputTarget.STDERR, "x" * (2 * 1024 * 1024))
        """
    )
    result = Sandbox(timeout=20, max_output=1024 * 1024).run(code)
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stdout_bytes == b"caf\xe9 ?\n"
    assert result.truncated
    assert len(result.stderr_bytes) == 1024 * 1024
    assert sandbox.run("print(1)").stdout == "1\n"
