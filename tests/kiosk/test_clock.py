"""The kernel clock check: adjtimex's answer, and False whenever it cannot be asked."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from kiosk import clock


class _Libc:
    def __init__(self, state: int) -> None:
        self.state = state

    def adjtimex(self, _buf: Any) -> int:
        return self.state


@pytest.mark.parametrize(
    ("state", "synced"), [(0, True), (1, True), (clock.TIME_ERROR, False), (-1, False)]
)
def test_the_kernel_state_decides(
    monkeypatch: pytest.MonkeyPatch, state: int, synced: bool
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(clock, "libc", lambda: _Libc(state))
    assert clock.kernel_clock_synced() is synced


def test_unknown_is_not_synced(monkeypatch: pytest.MonkeyPatch) -> None:
    class _Broken:
        def adjtimex(self, _buf: Any) -> int:
            raise OSError("no adjtimex")

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(clock, "libc", lambda: None)
    assert clock.kernel_clock_synced() is False
    monkeypatch.setattr(clock, "libc", lambda: _Broken())
    assert clock.kernel_clock_synced() is False
    monkeypatch.setattr(clock, "libc", lambda: _Libc(0))
    monkeypatch.setattr(sys, "platform", "darwin")
    assert clock.kernel_clock_synced() is False


def test_asking_often_starts_no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # The engine asks on every refresh of the ready screen (twice a second when idle):
    # finding the C library anew each time ran `ldconfig -p` in a child process.
    started: list[Any] = []
    real = subprocess.Popen.__init__

    def record(self: subprocess.Popen[Any], args: Any, *a: Any, **k: Any) -> None:
        started.append(args)
        real(self, args, *a, **k)

    clock.kernel_clock_synced()
    monkeypatch.setattr(subprocess.Popen, "__init__", record)
    for _ in range(3):
        assert isinstance(clock.kernel_clock_synced(), bool)
    assert started == []


def test_asking_the_real_kernel_gives_an_answer() -> None:
    assert isinstance(clock.kernel_clock_synced(), bool)


def test_boot_time_names_this_boot_and_only_moves_forward() -> None:
    first = clock.boot_time()
    if not clock.BOOT_ID_PATH.exists():
        assert first is None
        return
    assert first is not None
    assert first.boot_id == clock.BOOT_ID_PATH.read_text().strip()
    second = clock.boot_time()
    assert second is not None and second.boot_id == first.boot_id
    assert second.seconds >= first.seconds > 0


@pytest.mark.parametrize(
    ("last", "now", "is_due"),
    [(0.0, 99.0, False), (0.0, 100.0, True), (500.0, 100.0, True)],  # the last: in the future
)
def test_due_after_the_interval_or_when_the_last_time_is_in_the_future(
    last: float, now: float, is_due: bool
) -> None:
    assert clock.due(last, now, 100.0) is is_due
