"""Pauses between retries: the delivery backoff and the worker's error pause."""

from __future__ import annotations

from kiosk.flows.delivery import MAX_BACKOFF_S, backoff
from kiosk.worker import MAX_ERROR_PAUSE_S, error_pause


def test_delivery_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n, None) for n in (1, 2, 3, 4)] == [0.2, 0.4, 0.8, 1.6]
    assert backoff(40, None) == MAX_BACKOFF_S


def test_retry_after_wins_but_is_bounded() -> None:
    assert backoff(1, 7.0) == 7.0
    assert backoff(9, 0.5) == 0.5
    assert backoff(1, -3.0) == 0.0
    assert backoff(1, 10_000.0) == MAX_BACKOFF_S


def test_worker_error_pause_doubles_up_to_its_cap() -> None:
    assert [error_pause(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert error_pause(30) == MAX_ERROR_PAUSE_S
