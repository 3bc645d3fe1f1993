"""The running service checks its journal once a day and moves a damaged one aside."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from journal_damage import scramble_index

from kiosk.journal.integrity import CHECK_EVERY_S
from kiosk.views import Alarm
from refbackend import DEMO_VENUE


def test_daily_check_moves_a_damaged_journal_aside_with_the_alarm(make_sim: Any) -> None:
    sim = make_sim()
    _, token = sim.backend.mint_receipt(DEMO_VENUE, 2500)
    assert sim.scan(token).word == "checked"
    path = Path(sim.cfg.journal.path)
    scramble_index(path)
    time.sleep(1.0)  # rounds of the sync worker before a day has passed: no check yet
    assert not [p for p in path.parent.iterdir() if ".corrupt-" in p.name]
    sim.advance(CHECK_EVERY_S + 1)
    sim.counter.sync.wake()
    alarm = sim.wait_view(Alarm)
    assert alarm.kind == "journal" and "moved aside" in alarm.detail
    assert [p for p in path.parent.iterdir() if p.name.startswith("journal.db.corrupt-")]
    # The engine and the sync worker go on with a fresh journal.
    sim.advance(1.0)
    _, fresh = sim.backend.mint_receipt(DEMO_VENUE, 1500)
    assert sim.scan(fresh).word == "checked"
    sim.wait_synced()
