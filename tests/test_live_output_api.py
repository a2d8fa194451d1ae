"""The Python API's live output and on-demand stdin (issue 13): `on_output`, `stream()`, and
`stdin` as a stream, for sync and async hosts and sessions, with the real guest."""

import asyncio
import io
import os
import threading

import pytest

from agentbox import RunStream, Sandbox
from agentbox.engines.wasm.guest_strings import CHUNK_BYTES
from agentbox.output import StreamName
from tests.helpers import HANG_GUARD_SECONDS, returns

# Prints a line, then waits for the host to answer through stdin: output that arrives before
# the answer was delivered while the run went on.
HANDSHAKE = "import sys\nprint('ready')\nprint('note', file=sys.stderr)\nprint('got', input())\n"


class Pipe:
    """A pipe whose reading end is the script's stdin, and whose writing end answers."""

    def __init__(self) -> None:
        read_end, self._write_end = os.pipe()
        self.reader = os.fdopen(read_end, "rb", buffering=0)

    def answer(self, text: bytes) -> None:
        os.write(self._write_end, text)
        os.close(self._write_end)


def test_on_output_receives_lines_while_the_run_goes_on(sandbox: Sandbox) -> None:
    pipe = Pipe()
    seen: list[tuple[StreamName, bytes]] = []

    def on_output(stream: StreamName, data: bytes) -> None:
        seen.append((stream, data))
        if data == b"note\n":  # the run is still waiting for this answer
            pipe.answer(b"yes\n")

    result = returns(sandbox.run, HANDSHAKE, stdin=pipe.reader, on_output=on_output)
    assert seen == [("stdout", b"ready\n"), ("stderr", b"note\n"), ("stdout", b"got yes\n")]
    assert result.stdout == "ready\ngot yes\n" and result.stderr == "note\n"


def test_on_output_respects_the_output_cap() -> None:
    box = Sandbox(max_output=100, timeout=20)
    seen: list[bytes] = []
    result = box.run("print('x' * 1000)", on_output=lambda _stream, data: seen.append(data))
    assert b"".join(seen) == result.stdout_bytes == b"x" * 100
    assert result.truncated


def test_a_failing_callback_is_raised_after_the_run(sandbox: Sandbox) -> None:
    calls: list[bytes] = []

    def on_output(_stream: StreamName, data: bytes) -> None:
        calls.append(data)
        raise ValueError("consumer broke")

    with pytest.raises(ValueError, match="consumer broke"):
        sandbox.run("print(1)\nprint(2)", on_output=on_output)
    assert calls == [b"1\n"]  # not called again after it raised


def test_async_stream_yields_output_before_the_run_ends(sandbox: Sandbox) -> None:
    async def main() -> tuple[list[tuple[StreamName, bytes]], RunStream]:
        pipe = Pipe()
        run = sandbox.stream(HANDSHAKE, stdin=pipe.reader)
        seen = []
        async for stream, data in run:
            seen.append((stream, data))
            if data == b"note\n":
                pipe.answer(b"async\n")
        return seen, run

    seen, run = asyncio.run(asyncio.wait_for(main(), HANG_GUARD_SECONDS))
    assert seen == [("stdout", b"ready\n"), ("stderr", b"note\n"), ("stdout", b"got async\n")]
    assert run.result is not None and run.result.exit_code == 0


def test_run_async_on_output_and_session_stream(sandbox: Sandbox) -> None:
    async def main() -> tuple[list[bytes], list[bytes]]:
        seen: list[bytes] = []
        await sandbox.run_async("print('a')", on_output=lambda _s, data: seen.append(data))
        with sandbox.session() as session:
            await session.run_async("x = 41")
            streamed = [data async for _stream, data in session.stream("print(x + 1)")]
        return seen, streamed

    seen, streamed = asyncio.run(asyncio.wait_for(main(), HANG_GUARD_SECONDS))
    assert seen == [b"a\n"] and streamed == [b"42\n"]


def test_session_run_on_output_and_stdin_per_run(sandbox: Sandbox) -> None:
    with sandbox.session() as session:
        seen: list[bytes] = []
        first = session.run(
            "first = input()", stdin="one\ntwo\n", on_output=lambda _s, d: seen.append(d)
        )
        second = session.run("print(first, input())", stdin=io.BytesIO(b"three\n"))
        third = session.run("import sys\nprint(repr(sys.stdin.read()))")
    assert first.exit_code == 0 and seen == []
    assert second.stdout == "one three\n"  # nothing left over from the first run's stdin
    assert third.stdout == "''\n"


def test_stdin_stream_is_read_only_as_the_script_asks(sandbox: Sandbox) -> None:
    """A script that never reads stdin never touches it: a pipe nobody writes to is fine."""
    pipe = Pipe()
    try:
        result = returns(sandbox.run, "print('no input needed')", stdin=pipe.reader)
    finally:
        pipe.answer(b"")
    assert result.stdout == "no input needed\n"


def test_a_blocked_stdin_read_ends_at_the_deadline() -> None:
    pipe = Pipe()
    try:
        result = returns(Sandbox(timeout=1).run, "print('waiting')\ninput()", stdin=pipe.reader)
    finally:
        pipe.answer(b"")
    assert result.limit == "timeout" and result.stdout == "waiting\n"


def test_guest_asking_for_huge_reads_gets_at_most_one_chunk(sandbox: Sandbox) -> None:
    """Attack: the raw host function asked for 4 GiB; the host reads (and allocates) at most
    CHUNK_BYTES. Positive control: `sys.stdin` gets the whole input in pieces."""
    data = b"z" * (3 * CHUNK_BYTES)
    asked: list[int] = []
    source = io.BytesIO(data)

    class Recording:
        def read1(self, size: int) -> bytes:
            asked.append(size)
            return source.read(size)

        read = read1

    attack = "from wit_world.imports import host\nprint(len(host.read_stdin(2**32 - 1)))"
    result = sandbox.run(attack, stdin=Recording())
    assert result.stdout == f"{CHUNK_BYTES}\n"
    assert asked == [CHUNK_BYTES]
    source.seek(0)
    asked.clear()
    control = sandbox.run("import sys\nprint(len(sys.stdin.buffer.read()))", stdin=Recording())
    assert control.stdout == f"{len(data)}\n"
    assert max(asked) <= CHUNK_BYTES


def test_fallback_engine_delivers_output_and_stdin_stream() -> None:
    box = Sandbox(engine="restricted", timeout=20)
    seen: list[bytes] = []
    result = box.run(
        "print(input())", stdin=io.BytesIO(b"fallback\n"), on_output=lambda _s, d: seen.append(d)
    )
    assert result.stdout == "fallback\n" and b"".join(seen) == b"fallback\n"


def test_on_output_is_called_on_one_thread_in_order(sandbox: Sandbox) -> None:
    threads: set[int] = set()
    seen: list[bytes] = []

    def on_output(_stream: StreamName, data: bytes) -> None:
        threads.add(threading.get_ident())
        seen.append(data)

    sandbox.run(
        "import sys\nfor i in range(5):\n    print(i, file=[sys.stdout, sys.stderr][i % 2])",
        on_output=on_output,
    )
    assert seen == [b"0\n", b"1\n", b"2\n", b"3\n", b"4\n"]
    assert len(threads) == 1
