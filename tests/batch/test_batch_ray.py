"""`agentbox batch --ray` against a real Ray cluster this test starts: a head and a second node
(`ray start`, each in a process group of its own, one CPU each), the second node killed
mid-batch. Needs the `ray` extra (`make setup-test` installs it): without it these fail, they
do not skip."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.batch.test_batch_cli import batch_process, by_id, read_results, write_tasks
from tests.helpers import HANG_GUARD_SECONDS, run_cli, wait_until

pytestmark = pytest.mark.ray

RAY = str(Path(sys.executable).with_name("ray"))
# Notice a dead node within seconds, not the default ~30 s.
FAST_HEALTH_CHECKS = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_failure_threshold": "4",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Node:
    """One `ray start --block` process and everything it starts, in its own process group."""

    def __init__(self, *args: str, cpus: int = 1, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [RAY, "start", "--block", f"--num-cpus={cpus}", "--node-ip-address=127.0.0.1", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **FAST_HEALTH_CHECKS, **(env or {})},
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the node's whole process group (its raylet, its actors' workers)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(HANG_GUARD_SECONDS)


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def alive_nodes(address: str) -> int:
    probe = (
        "import ray, sys\n"
        f"ray.init(address={address!r}, logging_level='error', log_to_driver=False)\n"
        "print(sum(node['Alive'] for node in ray.nodes()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=HANG_GUARD_SECONDS
    )
    return int(result.stdout.strip() or 0)


def start_head(nodes: list[Node], cpus: int = 1, env: dict[str, str] | None = None) -> str:
    try:
        import ray  # noqa: F401
    except ImportError:
        pytest.fail("the ray extra is not installed: pip install -e '.[ray]' (make setup-test)")
    port = free_port()
    head = Node(
        "--head",
        f"--port={port}",
        f"--temp-dir={tempfile.mkdtemp(prefix='agentbox-ray-')}",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--dashboard-port={free_port()}",
        cpus=cpus,
        env=env,
    )
    nodes.append(head)
    assert wait_until(lambda: listening(port) or head.process.poll() is not None)
    assert head.process.poll() is None, "ray start --head failed"
    return f"127.0.0.1:{port}"


@pytest.fixture
def cluster() -> Iterator[tuple[str, Node]]:
    """A head and a second node; yields the address and the second node (to kill)."""
    nodes: list[Node] = []
    try:
        address = start_head(nodes)
        second = Node(f"--address={address}")
        nodes.append(second)
        assert wait_until(lambda: alive_nodes(address) == 2 or second.process.poll() is not None)
        assert second.process.poll() is None, "the second node did not join"
        yield address, second
    finally:
        for node in reversed(nodes):
            node.kill()


def test_the_guest_compiles_once_per_node_with_progress(tmp_path: Path) -> None:
    """A node with an empty compile cache and two CPUs: its first actor compiles (the progress
    line reaches the driver's stderr), the second starts after it and loads the cache."""
    nodes: list[Node] = []
    cache = tmp_path / "cache"
    try:
        address = start_head(nodes, cpus=2, env={"AGENTBOX_CACHE_DIR": str(cache)})
        tasks = write_tasks(
            tmp_path / "tasks.jsonl", [{"id": n, "code": "print(1)"} for n in range(20)]
        )
        out = tmp_path / "results.jsonl"
        result = run_cli(
            "batch", str(tasks), "-o", str(out), "--ray", address, timeout=HANG_GUARD_SECONDS * 3
        )
    finally:
        for node in nodes:
            node.kill()
    assert result.returncode == 0, result.stderr
    # Ray forwards an actor's stderr asynchronously: the first progress line, printed seconds
    # before the batch ends, always arrives; the closing "compiled in" line may not, when the
    # tasks after it end sooner than Ray's log monitor polls.
    assert result.stderr.count(b"compiling the sandbox for this machine") == 1, result.stderr
    assert list(cache.glob("*.cwasm")), "the node's cache holds no compiled guest"
    assert len(by_id(read_results(out))) == 20


def mixed_tasks(path: Path) -> Path:
    return write_tasks(
        path,
        [
            *({"id": n, "code": f"print({n} * {n})"} for n in range(40)),
            {"id": "raises", "code": "raise ValueError('x')"},
            {"id": "loops", "code": "while True: pass", "timeout": 1},
            {"id": "hog", "code": "b = bytearray(300 * 1024 * 1024)", "memory": "100M"},
            {"id": "bad", "code": 5},
            "not json",
        ],
    )


def comparable(result: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(result[k] for k in ("exit_code", "stdout", "stderr", "limit", "error"))


def test_ray_results_are_the_local_results(cluster: tuple[str, Node], tmp_path: Path) -> None:
    address, _ = cluster
    tasks = mixed_tasks(tmp_path / "tasks.jsonl")
    local, remote = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    ran_local = run_cli("batch", str(tasks), "-o", str(local), timeout=HANG_GUARD_SECONDS)
    ran_ray = run_cli(
        "batch", str(tasks), "-o", str(remote), "--ray", address, timeout=HANG_GUARD_SECONDS * 2
    )
    assert ran_local.returncode == 0, ran_local.stderr
    assert ran_ray.returncode == 0, ran_ray.stderr
    assert b"agentbox: 45 tasks: 40 passed, 1 failed, 2 hit a limit, 2 errors" in ran_ray.stderr
    local_results, ray_results = read_results(local), read_results(remote)
    assert len(local_results) == len(ray_results) == 45
    expected = {json.dumps(r["id"]) + str(r.get("line")): comparable(r) for r in local_results}
    found = {json.dumps(r["id"]) + str(r.get("line")): comparable(r) for r in ray_results}
    assert found == expected
    by_id(ray_results)  # no id twice


def test_a_node_killed_mid_batch_loses_and_repeats_nothing(
    cluster: tuple[str, Node], tmp_path: Path
) -> None:
    address, second = cluster
    count = 300
    tasks = write_tasks(
        tmp_path / "tasks.jsonl",
        [{"id": n, "code": f"import time\ntime.sleep(0.05)\nprint({n})"} for n in range(count)],
    )
    out = tmp_path / "results.jsonl"
    process = batch_process(str(tasks), "-o", str(out), "--ray", address)
    try:
        assert wait_until(lambda: out.exists() and len(out.read_bytes().splitlines()) >= 40)
        second.kill()
        killed_at = len(out.read_bytes().splitlines())
        _, stderr = process.communicate(timeout=HANG_GUARD_SECONDS * 3)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert b"a Ray actor was lost" in stderr, stderr
    assert killed_at < count, "the batch ended before the node was killed"
    found = by_id(read_results(out))
    assert sorted(found) == list(range(count))
    assert all(found[n]["stdout"] == f"{n}\n" and found[n]["error"] is None for n in range(count))
    assert alive_nodes(address) == 1


REUSE = """
import json, sys
from agentbox.batch import ray_pool, run_batch

address = sys.argv[1]
tasks = [{"id": n, "code": "print(6 * 7)"} for n in range(20)]


def batch(**options):
    outputs = [r.stdout for r in run_batch(tasks, ray=address, **options)]
    parked = sorted(h._actor_id.hex() for hs in ray_pool._parking._parked.values() for h in hs)
    return outputs, parked


first, parked_first = batch(timeout=30)
second, parked_second = batch(timeout=30)
other, parked_other = batch(timeout=20)
print(json.dumps([first, parked_first, second, parked_second, other, parked_other]))
"""


def test_a_second_batch_of_the_process_reuses_its_warm_actors(
    cluster: tuple[str, Node],
) -> None:
    """Batches in a row from one process (an eval or RL loop): the second, with the same
    settings, runs on the actors the first left parked; one with other settings kills them
    (freeing their CPUs) and starts its own."""
    address, _ = cluster
    done = subprocess.run(
        [sys.executable, "-c", REUSE, address],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS * 3,
    )
    assert done.returncode == 0, done.stderr
    first, parked_first, second, parked_second, other, parked_other = json.loads(
        done.stdout.strip().splitlines()[-1]
    )
    assert first == second == other == ["42\n"] * 20
    assert len(parked_first) == 2, parked_first  # one actor per CPU of the cluster
    assert parked_second == parked_first
    assert len(parked_other) == 2 and not set(parked_other) & set(parked_first)
