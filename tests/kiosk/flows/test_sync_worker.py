"""The sync worker under supervision: an unexpected error is logged and the loop goes on;
a stuck upload fails the watchdog check."""

from __future__ import annotations

import logging
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from kiosk.flows import sync_worker as sync
from kiosk.flows.sync import SyncReport
from kiosk.flows.sync_worker import SyncWorker


class _Closable:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def _context() -> Any:
    return SimpleNamespace(
        journal=_Closable(), client=_Closable(), health=SimpleNamespace(offline=False)
    )


def test_an_unexpected_error_is_logged_and_the_loop_continues(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []
    second = threading.Event()

    def flaky_sync_once(ctx: Any, **_: Any) -> SyncReport:
        calls.append(len(calls))
        if len(calls) == 1:
            raise KeyError("a bug, not a journal error")
        second.set()
        return SyncReport(0, 0, 0, error="backend away")

    monkeypatch.setattr(sync, "sync_once", flaky_sync_once)
    ctx = _context()
    worker = SyncWorker(lambda: ctx, interval=0.05)
    caplog.set_level(logging.ERROR, logger="kiosk.worker")
    worker.start()
    try:
        assert second.wait(10), "the loop ended after the unexpected error"
        assert worker.alive and worker.unexpected_errors == 1
        assert worker.stalled(time.monotonic(), max_stall=30.0) is None
    finally:
        assert worker.stop(5.0)
    (record,) = [r for r in caplog.records if "unexpected error" in r.getMessage()]
    assert "kiosk-sync" in record.getMessage()
    # the traceback is kept (as exc_info, or as redacted exc_text once logging is set up)
    assert record.exc_info is not None or "KeyError" in (record.exc_text or "")
    assert ctx.journal.closed and ctx.client.closed  # the thread's own resources


def test_a_stuck_sync_worker_fails_the_watchdog(
    make_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = make_sim()
    assert sim.counter.healthy(sim.clock()) is None
    entered, release = threading.Event(), threading.Event()

    def stuck_sync_once(ctx: Any, **_: Any) -> SyncReport:
        entered.set()
        release.wait(30)
        return SyncReport(0, 0, 0)

    monkeypatch.setattr(sync, "sync_once", stuck_sync_once)
    sim.counter.sync.wake()
    assert entered.wait(10)
    sim.advance(31.0)
    deadline = time.monotonic() + 10
    while (sim.counter.engine.heartbeat or 0.0) < sim.clock() - 5.0:  # the engine still turns
        assert time.monotonic() < deadline
        time.sleep(0.05)
    try:
        assert sim.counter.healthy(sim.clock(), max_stall=30.0) == "kiosk-sync loop stalled"
    finally:
        release.set()
