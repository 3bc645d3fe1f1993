"""The running service checks its journal once a day and mends a damaged one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from journal_damage import scramble_index

from kiosk.errors import JournalError
from kiosk.journal import Journal
from kiosk.journal.integrity import CHECK_EVERY_S
from kiosk.journal.repair import Recovery, last_recovery
from refbackend import DEMO_VENUE


def test_the_daily_check_rebuilds_a_damaged_index_in_place(make_sim: Any) -> None:
    sim = make_sim()
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 2500)
    assert sim.scan(token).word == "checked"
    path = Path(sim.cfg.journal.path)
    scramble_index(path)
    sim.advance(CHECK_EVERY_S + 1)
    sim.counter.sync.wake()
    deadline = time.monotonic() + 15.0
    while (recovery := _recovery(path)) is None:
        assert time.monotonic() < deadline, "the journal was not repaired"
        time.sleep(0.1)
    assert recovery.how == "reindexed"
    assert not [p for p in path.parent.iterdir() if ".corrupt-" in p.name]
    with Journal.open(path) as journal:  # nothing lost: the scan is still known
        assert [r.outcome for r in journal.receipt_history(tx)] == ["checked"]
    sim.advance(1.0)
    _, fresh = sim.backend.mint_receipt(DEMO_VENUE, 1500)
    assert sim.scan(fresh).word == "checked"


def _recovery(path: Path) -> Recovery | None:
    """The journal's recorded mending, or None (none yet, or still damaged)."""
    try:
        with Journal.open(path, recover=False) as journal:
            return last_recovery(journal.get_meta)
    except JournalError:
        return None
