"""The isolation, limit and bad-input guarantees, against both images (the `image` fixture:
its "data" case is marked data_image). Each attack has a positive control in the same script
or test, so a guest that simply failed to run could not pass."""

import os
import socket
import textwrap

import pytest

from agentbox import ExitCode, Sandbox, skill
from agentbox.limits import MIB

PROBE = "print('ran')\n"


@skill
def add(a: int, b: int) -> int:
    """Adds two numbers on the host."""
    return a + b


def run(image: str, code: str, **options: object):
    options.setdefault("timeout", 120)
    return Sandbox(image=image, **options).run(textwrap.dedent(code))  # type: ignore[arg-type]


def test_network_is_unreachable(image: str) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    try:
        result = run(
            image,
            f"""
            import socket
            def raw():
                s = socket.socket()
                s.connect(("127.0.0.1", {port}))
                s.sendall(b"x")
            for attempt in (
                lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"x"),
                raw,
            ):
                try:
                    attempt()
                    print("connected")
                except Exception as error:  # OSError, or no getaddrinfo at all (data image)
                    print("refused", type(error).__name__)
            """,
        )
        listener.settimeout(0.3)
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()
    assert result.exit_code == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["refused", "refused"]


def test_host_files_are_invisible_and_image_folders_read_only(image: str, tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    result = run(
        image,
        f"""
        import os
        for path in ({str(secret)!r}, "/etc/passwd", "/proc/self/environ"):
            try:
                open(path).read()
                print("READ", path)
            except OSError:
                pass
        for path in ("/usr/local/lib/planted.py", "/usr/local/lib/x/planted.py"):
            try:
                open(path, "w").write("x")
                print("WROTE", path)
            except OSError:
                pass
        open("/tmp/mine.txt", "w").write("ok")
        print(open("/tmp/mine.txt").read())
        """,
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "ok\n"


def test_environment_is_only_what_was_given(image: str) -> None:
    os.environ["AGENTBOX_TEST_HOST_SECRET"] = "leak"
    try:
        box = Sandbox(image=image, timeout=120, env={"GIVEN": "yes"})
        result = box.run("import os, json; print(json.dumps(dict(os.environ)))")
    finally:
        del os.environ["AGENTBOX_TEST_HOST_SECRET"]
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == '{"GIVEN": "yes"}'


def test_processes_cannot_start(image: str) -> None:
    result = run(
        image,
        """
        import os, subprocess
        for attempt in (lambda: subprocess.run(["ls"]), lambda: os.system("ls"),
                        lambda: os.fork(), lambda: os.execv("/bin/ls", ["ls"])):
            try:
                attempt()
                print("STARTED")
            except (OSError, AttributeError, RuntimeError, NotImplementedError):
                pass
        print("contained")
        """,
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "contained\n"


@pytest.mark.parametrize("code", ["while True: pass", "import time\ntime.sleep(600)"])
def test_timeout_ends_the_run(image: str, code: str) -> None:
    box = Sandbox(image=image, timeout=120)
    box.warmup()
    result = box.run("print('started', flush=True)\n" + code, timeout=3)
    assert result.exit_code == ExitCode.TIMEOUT
    assert result.limit == "timeout"
    assert result.stdout == "started\n"


def test_memory_limit_is_a_memory_error(image: str) -> None:
    result = run(image, "print('before', flush=True)\nx = bytearray(900 * 1024 * 1024)")
    assert result.limit == "memory", result.stderr
    assert result.exit_code == ExitCode.MEMORY
    assert result.stdout == "before\n"


def test_fuel_ends_a_loop(image: str) -> None:
    result = run(image, "print('go', flush=True)\nwhile True: pass", fuel=50_000_000)
    assert result.exit_code == ExitCode.FUEL
    assert result.limit == "fuel"
    assert result.stdout == "go\n"


def test_output_is_capped(image: str) -> None:
    result = run(image, "for _ in range(100000): print('x' * 100)", max_output="64K")
    assert result.exit_code == 0, result.stderr
    assert result.truncated
    assert 60 * 1024 <= len(result.stdout_bytes) <= 64 * 1024


def test_scratch_is_bounded(image: str) -> None:
    result = run(
        image,
        """
        import errno
        try:
            with open("/tmp/big", "wb") as file:
                file.write(b"x" * (3 * 1024 * 1024))
            print("wrote")
        except OSError as error:
            print(errno.errorcode[error.errno])
        open("/tmp/small", "wb").write(b"y" * 1000)
        print("small ok")
        """,
        scratch=2 * MIB,
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "ENOSPC\nsmall ok\n"


def test_skills_are_called_on_the_host(image: str) -> None:
    result = run(
        image,
        """
        import skills
        print(call_skill("add", {"a": 2, "b": 3}), skills.add(a=4, b=5))
        try:
            call_skill("nope", {})
        except skills.SkillError as error:
            print("refused:", error)
        """,
        skills=[add],
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "5 9"
    assert result.stdout.splitlines()[1].startswith("refused: no skill named 'nope'")
    assert [call.name for call in result.skill_calls][:2] == ["add", "add"]


def test_argv_stdin_env_and_exit_codes(image: str) -> None:
    box = Sandbox(image=image, timeout=120, env={"K": "v"})
    result = box.run(
        "import sys, os\nprint(sys.argv, os.environ['K'], sys.stdin.read())\nsys.exit(3)",
        args=["a", "b"],
        stdin="in",
        filename="job.py",
    )
    assert result.stdout == "['job.py', 'a', 'b'] v in\n"
    assert result.exit_code == 3
    failed = box.run("def f():\n    1/0\nf()")
    assert failed.exit_code == 1
    assert failed.stderr.startswith("Traceback (most recent call last):")
    assert "line 2, in f" in failed.stderr and failed.stderr.endswith(
        "ZeroDivisionError: division by zero\n"
    )
    bad = box.run("def (:")
    assert bad.exit_code == 1 and "SyntaxError" in bad.stderr
