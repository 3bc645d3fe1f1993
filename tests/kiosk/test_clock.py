"""The kernel clock check: adjtimex's answer, and False whenever it cannot be asked."""

from __future__ import annotations

import ctypes
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
    monkeypatch.setattr(ctypes, "CDLL", lambda *a, **k: _Libc(state))
    assert clock.kernel_clock_synced() is synced


def test_unknown_is_not_synced(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_libc(*_a: Any, **_k: Any) -> Any:
        raise OSError("no libc")

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert clock.kernel_clock_synced() is False
    monkeypatch.setattr(sys, "platform", "darwin")
    assert clock.kernel_clock_synced() is False


def test_asking_the_real_kernel_gives_an_answer() -> None:
    assert isinstance(clock.kernel_clock_synced(), bool)
