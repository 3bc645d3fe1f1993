"""Busy moments: a scan that arrives while the counter waits for the backend is kept over
junk, and whatever is dropped is logged and answered with the error beep."""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

import pytest

from kiosk.events import ScanFault
from kiosk.flows.engine import INBOX_SIZE
from kiosk.journal import Journal
from refbackend import DEMO_VENUE

Sim = Any
SLOW = {"backend": {"connect_timeout": 0.5, "read_timeout": 6.0, "scan_budget": 5.0}}


def outcome_words(sim: Sim) -> list[str]:
    with Journal.open(sim.cfg.journal.path) as journal:
        journal.conn.row_factory = sqlite3.Row
        rows = journal.conn.execute("SELECT outcome FROM outcomes ORDER BY id")
        return [str(r["outcome"]) for r in rows]


def test_genuine_receipt_survives_a_burst_of_junk_while_the_engine_waits(
    make_sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kiosk")
    sim = make_sim(**SLOW)
    assert sim.scan(sim.backend.mint_receipt(DEMO_VENUE, 1000)[1]).word == "checked"
    # Else the sync worker's first fetch of the venue may meet the delay below and set
    # ``delaying`` (on a loaded machine it comes after that scan): the check in hand would
    # then be answered at once, and the engine would take the burst as it arrives.
    sim.wait_venue_fetched()
    busy_tx, busy = sim.backend.mint_receipt(DEMO_VENUE, 1100)
    sim.backend.faults.delaying.clear()
    sim.backend.faults.delay_s = 1.5
    sim.submit_scan(busy)
    assert sim.backend.faults.delaying.wait(5.0)  # the engine now waits for the backend
    sim.backend.faults.delay_s = 0.0  # only the check in hand is slow
    assert sim.in_progress_at_backend(busy_tx)  # it is that check that sleeps
    genuine_tx, genuine = sim.backend.mint_receipt(DEMO_VENUE, 2400)
    junk = 0
    for _ in range(10):
        sim.counter.submit(ScanFault("serial", "binary", sim.clock()))
        junk += 1
    sim.submit_scan(genuine, "serial")
    for i in range(2 * INBOX_SIZE):
        sim.submit_scan(f"%%unreadable {i}%%", "serial")
        junk += 1
    signals_before = len(sim.signals.kinds)
    assert sim.outcome().tx == busy_tx
    got = sim.outcome()
    assert (got.word, got.tx) == ("checked", genuine_tx)
    time.sleep(0.5)  # anything still queued would be answered by now
    assert sim.outcomes.empty()
    assert outcome_words(sim) == ["checked", "checked", "checked"]  # no junk answered
    dropped = [r.getMessage() for r in caplog.records if "dropped a" in r.getMessage()]
    assert len(dropped) == junk
    assert any("unreadable read from serial (binary)" in m for m in dropped)
    assert any("unreadable scan from serial" in m for m in dropped)
    assert not any("code-shaped" in m for m in dropped)
    assert "error" in sim.signals.kinds[signals_before:]  # the staff is asked to scan again
