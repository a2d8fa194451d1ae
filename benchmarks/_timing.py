"""Shared timing helpers for the benchmark scripts (side-by-side measurements in one run)."""

import statistics
import time
from collections.abc import Callable


def measure(
    function: Callable[[], object], runs: int, warmup: int = 3, pause: float = 0.0
) -> list[float]:
    """Wall-clock milliseconds of each of `runs` calls, after `warmup` untimed calls.

    `pause` seconds between calls model a server's idle gaps (when a warm pool refills).
    """
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(runs):
        if pause:
            time.sleep(pause)
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def print_table(rows: list[tuple[str, list[float]]], baseline: str) -> None:
    """One line per measurement: p50, p95 and the ratio of p50 to the baseline's p50."""
    reference = p50(dict(rows)[baseline])
    print(f"{'measurement':<48} {'p50 ms':>9} {'p95 ms':>9} {'x ' + baseline[:18]:>22}")
    for name, samples in rows:
        ratio = p50(samples) / reference
        print(f"{name:<48} {p50(samples):>9.2f} {p95(samples):>9.2f} {ratio:>22.2f}")
