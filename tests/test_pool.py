"""The warm pool on its own: what it hands out, when it refills, and that failures do not stick."""

import itertools
import threading

from agentbox.engines.wasm.pool import WarmPool
from tests.helpers import wait_until


class Factory:
    """Numbered items, remembering which thread built each; `gate` holds builds back, so a
    test knows when the pool is empty."""

    def __init__(self) -> None:
        self._numbers = itertools.count()
        self.builders: dict[int, str] = {}
        self.failing = False
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self) -> int:
        self.gate.wait()
        if self.failing:
            raise RuntimeError("cannot build")
        number = next(self._numbers)
        self.builders[number] = threading.current_thread().name
        return number


def test_fills_to_its_size_off_the_callers_thread() -> None:
    factory = Factory()
    pool = WarmPool(factory, 3)
    assert wait_until(lambda: len(factory.builders) == 3)
    assert [pool.take_ready(), pool.take_ready(), pool.take_ready()] == [0, 1, 2]
    assert set(factory.builders.values()) == {"agentbox-pool"}
    pool.close()


def test_an_empty_pool_answers_at_once_and_refills() -> None:
    factory = Factory()
    pool = WarmPool(factory, 1)
    assert wait_until(lambda: len(factory.builders) == 1)
    factory.gate.clear()
    assert pool.take_ready() == 0
    assert pool.take_ready() is None  # not waiting for the build held at the gate
    factory.gate.set()
    assert wait_until(lambda: len(factory.builders) == 2)
    assert wait_until(lambda: pool._ready.qsize() == 1)  # polling takes would delay the refill
    assert pool.take_ready() == 1
    pool.close()


def test_every_item_is_handed_out_once() -> None:
    factory = Factory()
    pool = WarmPool(factory, 2)
    taken = []
    for _ in range(200):
        item = pool.take_ready()
        if item is not None:
            taken.append(item)
    assert wait_until(lambda: len(factory.builders) >= len(taken) + 2)
    taken += [pool.take_ready(), pool.take_ready()]
    assert len(taken) == len(set(taken))
    pool.close()


def test_a_failing_build_does_not_stop_the_pool() -> None:
    factory = Factory()
    factory.failing = True
    pool = WarmPool(factory, 2)
    assert pool.take_ready() is None
    factory.failing = False
    assert pool.take_ready() is None  # asking again makes the pool try again
    assert wait_until(lambda: len(factory.builders) == 2)
    assert pool.take_ready() == 0
    pool.close()


def test_a_closed_pool_builds_nothing_more() -> None:
    factory = Factory()
    pool = WarmPool(factory, 2)
    assert wait_until(lambda: len(factory.builders) == 2)
    pool.close()
    assert [pool.take_ready(), pool.take_ready()] == [0, 1]
    assert pool.take_ready() is None
    assert len(factory.builders) == 2
