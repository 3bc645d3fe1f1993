"""The worker base: supervised loop, heartbeat, bounded stop that reports a stuck thread."""

from __future__ import annotations

import logging
import threading

import pytest

from kiosk.worker import Worker


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Counting(Worker):
    def __init__(self, clock: _Clock, fail_first: int = 0) -> None:
        super().__init__("test-worker", monotonic=clock)
        self.steps = 0
        self.fail_first = fail_first
        self.turned = threading.Event()
        self.torn_down = False

    def _step(self) -> None:
        self.steps += 1
        if self.steps <= self.fail_first:
            raise ZeroDivisionError("a bug")
        self.turned.set()
        self._stopping.wait(0.01)

    def _teardown(self) -> None:
        self.torn_down = True


def test_heartbeat_and_stop() -> None:
    clock = _Clock()
    w = _Counting(clock)
    assert w.stalled(clock(), 30.0) is None  # never started: nothing to watch
    w.start()
    assert w.turned.wait(5)
    assert w.heartbeat == 100.0 and w.stalled(clock(), 30.0) is None
    clock.now = 140.0  # the loop beats again at once with the new time
    w.turned.clear()
    assert w.turned.wait(5)
    assert w.stalled(clock(), 30.0) is None
    assert w.stop(5.0) and w.torn_down and not w.alive
    assert w.stop(5.0)  # idempotent


def test_an_unexpected_error_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="kiosk.worker")
    w = _Counting(_Clock(), fail_first=1)
    w.start()
    try:
        assert w.turned.wait(5)
        assert w.unexpected_errors == 1 and w.alive
    finally:
        w.stop(5.0)
    assert any("test-worker: unexpected error" in r.getMessage() for r in caplog.records)


def test_a_stuck_step_goes_stale_and_stop_reports_it(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    clock = _Clock()

    class Stuck(Worker):
        def _step(self) -> None:
            release.wait(10)

    w = Stuck("stuck-worker", monotonic=clock)
    w.start()
    try:
        clock.now += 31.0
        assert w.stalled(clock(), 30.0) == "stuck-worker loop stalled"
        caplog.set_level(logging.ERROR, logger="kiosk.worker")
        assert w.stop(0.1) is False
        assert "stuck-worker did not stop within 0.1 s" in caplog.text
    finally:
        release.set()
        assert w.join(5)


def test_a_thread_that_ended_by_itself_is_reported() -> None:
    class Once(Worker):
        def _setup(self) -> None:
            raise RuntimeError("cannot open")

    w = Once("once-worker")
    w.start()
    assert w.join(5)
    assert w.stalled(0.0, 30.0) == "once-worker thread ended"
