"""Reachability: offline after 2 failures in the last 5 calls, or one call that timed out."""

from __future__ import annotations

import threading

from kiosk.flows.health import Reachability


def test_starts_online_and_one_failure_is_not_an_outage() -> None:
    r = Reachability()
    assert not r.offline
    r.failure()
    assert not r.offline
    r.failure()
    assert r.offline


def test_a_timeout_is_an_outage_at_once_and_a_success_ends_it() -> None:
    r = Reachability()
    r.failure(timed_out=True)
    assert r.offline
    r.success()
    assert not r.offline
    r.failure()  # the outage's failures were forgotten by the success
    assert not r.offline


def test_old_failures_slide_out_of_the_window() -> None:
    r = Reachability(window=5, threshold=2)
    r.failure()
    for _ in range(4):
        r.success()
    r.failure()  # the first failure is now out of the window of 5
    assert not r.offline
    r.failure()
    assert r.offline


def test_reports_from_two_threads() -> None:
    r = Reachability(window=1000, threshold=1000)

    def fail() -> None:
        for _ in range(500):
            r.failure()

    threads = [threading.Thread(target=fail) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert r.offline  # all 1000 failures counted
