"""Output as an async iterator: `async for stream, data in sandbox.stream(code)`.

The run calls its `on_output` callback on the thread running the script; this hands each piece
to the event loop, where the iterator yields it. What the queue can hold is bounded by the run's
`max_output` (only kept output is passed on), so a consumer that falls behind costs at most
that much memory, and never slows the script down.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from agentbox.output import OutputCallback, StreamName
from agentbox.result import RunResult

_END = object()


class RunStream:
    """One run's output as it is produced; `result` once the iteration has ended.

    The run starts at the first `async for` step. Leaving the loop early does not stop the
    run: `aclose()` (or `async with`) waits for it to end and sets `result`.
    """

    def __init__(self, start: Callable[[OutputCallback], Awaitable[RunResult]]) -> None:
        self._start = start
        self._queue: asyncio.Queue[Any] | None = None
        self._task: asyncio.Task[RunResult] | None = None
        self.result: RunResult | None = None

    def __aiter__(self) -> "RunStream":
        return self

    async def __aenter__(self) -> "RunStream":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _begin(self) -> asyncio.Queue[Any]:
        if self._queue is None:
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[Any] = asyncio.Queue()

            def on_output(stream: StreamName, data: bytes) -> None:
                with contextlib.suppress(RuntimeError):  # the loop has closed: nobody listens
                    loop.call_soon_threadsafe(queue.put_nowait, (stream, data))

            async def run() -> RunResult:
                try:
                    return await self._start(on_output)
                finally:
                    queue.put_nowait(_END)  # after every piece: they were queued first

            self._queue = queue
            self._task = asyncio.ensure_future(run())
        return self._queue

    async def __anext__(self) -> tuple[StreamName, bytes]:
        queue = self._begin()
        item = await queue.get()
        if item is _END:
            queue.put_nowait(_END)  # a further step ends again
            await self._finish()
            raise StopAsyncIteration
        stream, data = item
        return stream, data

    async def _finish(self) -> RunResult:
        assert self._task is not None
        self.result = await self._task  # raises what the run raised
        return self.result

    async def aclose(self) -> None:
        """Wait for the run to end (output not yet read is dropped) and set `result`."""
        if self._task is not None:
            await self._finish()
