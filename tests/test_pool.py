"""The warm pool on its own: what it hands out, who builds, and that failures do not stick."""

import itertools
import threading

import pytest

from agentbox.pool import WarmPool
from tests.helpers import wait_until


class Factory:
    """Numbered items, remembering which thread built each; `pool_gate` holds the pool's own
    builds back, so a test knows who builds next."""

    def __init__(self) -> None:
        self._numbers = itertools.count()
        self.builders: dict[int, str] = {}
        self.failing = False
        self.pool_gate = threading.Event()
        self.pool_gate.set()

    def __call__(self) -> int:
        if self.failing:
            raise RuntimeError("cannot build")
        if threading.current_thread().name == "agentbox-pool":
            self.pool_gate.wait()
        number = next(self._numbers)
        self.builders[number] = threading.current_thread().name
        return number


def test_fills_to_its_size_off_the_callers_thread() -> None:
    factory = Factory()
    pool = WarmPool(factory, 3)
    assert wait_until(lambda: len(factory.builders) == 3)
    assert [pool.take(), pool.take(), pool.take()] == [0, 1, 2]
    assert set(factory.builders.values()) == {"agentbox-pool"}
    pool.close()


def test_an_empty_pool_builds_on_the_callers_thread_and_refills() -> None:
    factory = Factory()
    pool = WarmPool(factory, 1)
    assert wait_until(lambda: len(factory.builders) == 1)
    factory.pool_gate.clear()
    assert pool.take() == 0
    assert pool.take() == 1
    assert factory.builders[1] == threading.current_thread().name
    factory.pool_gate.set()
    assert wait_until(lambda: len(factory.builders) == 3)  # the refill, onto the shelf
    assert pool.take_ready() == 2
    pool.close()


def test_every_item_is_handed_out_once() -> None:
    factory = Factory()
    pool = WarmPool(factory, 2)
    taken = [pool.take() for _ in range(50)]
    assert len(set(taken)) == 50
    pool.close()


def test_a_failing_build_does_not_stop_the_pool() -> None:
    factory = Factory()
    factory.failing = True
    pool = WarmPool(factory, 2)
    assert pool.take_ready() is None
    with pytest.raises(RuntimeError, match="cannot build"):
        pool.take()  # the caller's own build reports the error
    factory.failing = False
    assert pool.take() == 0
    assert wait_until(lambda: pool.take_ready() is not None)
    pool.close()


def test_a_closed_pool_builds_nothing_more() -> None:
    factory = Factory()
    pool = WarmPool(factory, 2)
    assert wait_until(lambda: len(factory.builders) == 2)
    pool.close()
    assert [pool.take(), pool.take()] == [0, 1]
    built = len(factory.builders)
    assert pool.take() == built  # built by the caller
    assert factory.builders[built] == threading.current_thread().name
