"""Round-trip latency of `agentbox mcp` against a one-shot CLI and the MCP SDK's own floor.

    .venv/bin/python benchmarks/server.py [--calls 200] [--oneshot-calls 20] [--clients 8]
                                          [--pool-size 2]

Everything is measured in ONE run, client-side (request sent -> result received), with the
official SDK client over stdio against real server processes:

- run_python: `print(1)` through `agentbox mcp` (warm pool), a fresh interpreter per call
- session:    `print(1)` in one named session (the interpreter is kept)
- floor:      a do-nothing tool on a bare MCPServer (this script, `--floor-server sdk`): the
              cost of the protocol, the SDK and its stdio transport alone
- loop floor: the same tool over agentbox's own stdio transport
              (`agentbox.server.mcp_stdio`, which `agentbox mcp` uses): what agentbox adds over
              it is the sandbox's own cost
- one-shot:   `agentbox run -` started per call (a new process each time)
- concurrent: N servers, one client each (an MCP client app spawns its own server over stdio),
              all calling at once; per-call latency and total throughput

The three single-client series are interleaved in rounds so a noisy neighbour hurts all alike.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

ROUNDS = 4
WARMUP_CALLS = 10


# An agent's calls arrive seconds apart (model latency); 20 ms is enough for the warm pool to
# refill between calls, which back-to-back calls never allow on 2 cores.
PACE_SECONDS = 0.02


def floor_server(transport: str) -> None:
    """The protocol's floor: the same SDK serving a tool that does nothing."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(name="floor", log_level="WARNING")

    @server.tool()
    def noop() -> str:
        """Does nothing."""
        return ""

    if transport == "sdk":
        server.run("stdio")
    else:
        from agentbox.server.mcp_server import serve_stdio

        anyio.run(serve_stdio, server)


def agentbox_command(*args: str) -> list[str]:
    """The installed `agentbox` console script next to this interpreter, else `-m agentbox`."""
    script = shutil.which("agentbox", path=os.path.dirname(sys.executable))
    return [script, *args] if script else [sys.executable, "-m", "agentbox", *args]


def mcp_command(pool_size: str) -> list[str]:
    return agentbox_command("mcp", "--pool-size", pool_size)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(name: str, samples_ms: list[float]) -> str:
    return (
        f"{name:<34} n={len(samples_ms):<5} p50={percentile(samples_ms, 0.5):8.2f} ms  "
        f"p95={percentile(samples_ms, 0.95):8.2f} ms  mean={statistics.fmean(samples_ms):8.2f} ms"
    )


async def connect(stack: AsyncExitStack, command: list[str]) -> ClientSession:
    params = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    read, write = await stack.enter_async_context(stdio_client(params, errlog=sys.stderr))
    session = await stack.enter_async_context(ClientSession(read, write))
    await session.initialize()
    return session


def caller(session: ClientSession, tool: str, arguments: dict) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        result = await session.call_tool(tool, arguments)
        if result.is_error:
            raise RuntimeError(f"{tool} failed: {result.content}")

    return call


async def timed(call: Callable[[], Awaitable[None]], count: int, pause: float = 0.0) -> list[float]:
    """Milliseconds per call; `pause` seconds before each (untimed) model an agent's pace."""
    samples = []
    for _ in range(count):
        if pause:
            await anyio.sleep(pause)
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def one_shot(count: int) -> list[float]:
    command = agentbox_command("run", "-")
    subprocess.run(command, input=b"print(1)", check=True, capture_output=True)  # cache warm
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        subprocess.run(command, input=b"print(1)", check=True, capture_output=True)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def concurrent(clients: int, calls_each: int, pool_size: str) -> tuple[list[float], float]:
    async with AsyncExitStack() as stack:
        sessions = [await connect(stack, mcp_command(pool_size)) for _ in range(clients)]
        calls = [caller(s, "run_python", {"code": "print(1)"}) for s in sessions]
        for call in calls:
            await timed(call, WARMUP_CALLS)
        samples: list[float] = []

        async def client(call: Callable[[], Awaitable[None]]) -> None:
            samples.extend(await timed(call, calls_each))

        started = time.perf_counter()
        async with anyio.create_task_group() as tasks:
            for call in calls:
                tasks.start_soon(client, call)
        return samples, len(samples) / (time.perf_counter() - started)


async def main(arguments: argparse.Namespace) -> None:
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}", flush=True)
    print(f"agentbox mcp --pool-size {arguments.pool_size}", flush=True)
    names = ("floor", "loop_floor", "run_python", "session")
    series: dict[str, list[float]] = {
        **{name: [] for name in names},
        **{f"{name}_paced": [] for name in names},
    }
    async with AsyncExitStack() as stack:
        floor = await connect(stack, [sys.executable, __file__, "--floor-server", "sdk"])
        loop_floor = await connect(stack, [sys.executable, __file__, "--floor-server", "loop"])
        agentbox = await connect(stack, mcp_command(arguments.pool_size))
        calls = {
            "floor": caller(floor, "noop", {}),
            "loop_floor": caller(loop_floor, "noop", {}),
            "run_python": caller(agentbox, "run_python", {"code": "print(1)"}),
            "session": caller(agentbox, "run_python", {"code": "print(1)", "session": "bench"}),
        }
        for call in calls.values():
            await timed(call, WARMUP_CALLS)
        per_round = max(1, arguments.calls // ROUNDS)
        for _ in range(ROUNDS):
            for name, call in calls.items():
                series[name].extend(await timed(call, per_round))
            for name in names:
                paced = await timed(calls[name], per_round, pause=PACE_SECONDS)
                series[f"{name}_paced"].extend(paced)
    oneshot = one_shot(arguments.oneshot_calls)
    calls_each = max(1, arguments.calls // 4)
    many, throughput = await concurrent(arguments.clients, calls_each, arguments.pool_size)

    print()
    print(summary("(b) floor: do-nothing MCP tool", series["floor"]))
    print(summary("    same, agentbox's stdio transport", series["loop_floor"]))
    print(summary("run_python print(1)", series["run_python"]))
    print(summary("(c) run_python in a session", series["session"]))
    pace = f"{PACE_SECONDS * 1000:.0f} ms apart"
    print(summary(f"floor, calls {pace}", series["floor_paced"]))
    print(summary(f"loop floor, calls {pace}", series["loop_floor_paced"]))
    print(summary(f"run_python, calls {pace}", series["run_python_paced"]))
    print(summary(f"session, calls {pace}", series["session_paced"]))
    print(summary("(a) one-shot `agentbox run -`", oneshot))
    print(summary(f"(d) {arguments.clients} servers x 1 client, at once", many))
    print(f"{'':<34} throughput {throughput:.0f} calls/s over {arguments.clients} clients")
    p50 = {name: percentile(samples, 0.5) for name, samples in series.items()}
    print()
    print(f"one-shot / run_python (p50): {percentile(oneshot, 0.5) / p50['run_python']:6.1f}x")
    print(f"run_python / floor    (p50): {p50['run_python'] / p50['floor']:6.2f}x  (target <= 1.5)")
    print(f"session / floor       (p50): {p50['session'] / p50['floor']:6.2f}x")
    paced_ratio = p50["run_python_paced"] / p50["floor_paced"]
    print(f"run_python / floor, calls {pace}: {paced_ratio:6.2f}x")
    session_paced = p50["session_paced"] / p50["floor_paced"]
    print(f"session / floor, calls {pace}:    {session_paced:6.2f}x")
    print("\nthe sandbox's own cost, against the same tool over the same transport:")
    for name in ("run_python", "session"):
        back_to_back = p50[name] / p50["loop_floor"]
        paced = p50[f"{name}_paced"] / p50["loop_floor_paced"]
        print(f"{name} / loop floor (p50): {back_to_back:6.2f}x, calls {pace}: {paced:6.2f}x")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per single-client series")
    parser.add_argument("--oneshot-calls", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8, help="concurrent servers/clients")
    parser.add_argument("--pool-size", default="2", help="`agentbox mcp --pool-size`")
    parser.add_argument("--floor-server", choices=["sdk", "loop"], help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.floor_server:
        floor_server(options.floor_server)
    else:
        anyio.run(main, options)
