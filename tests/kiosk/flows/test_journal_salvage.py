"""The running kiosk mends a damaged journal: a damaged index is rebuilt in place at the
daily check; a damaged table page at start costs only its rows, and the salvaged offline
acceptances are uploaded under their original Idempotency-Keys, with the technician told
how many rows were salvaged and lost."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from journal_damage import scramble_table_page

from kiosk.backend import bodies
from kiosk.errors import JournalError
from kiosk.journal import Journal
from kiosk.journal.repair import Recovery, last_recovery
from kiosk.views import Alarm, Salvage, TechInfo
from kiosk.vocabulary import RequestKind
from refbackend import DEMO_VENUE, ReferenceBackend

WAITING = 40


def accepted_offline(path: Path, backend: ReferenceBackend) -> dict[str, str]:
    """*WAITING* receipts accepted offline an hour ago, not uploaded; tx -> key."""
    keys = {}
    with Journal.open(path) as journal:
        for _ in range(WAITING):
            tx, token = backend.mint_receipt(DEMO_VENUE, 1000)
            body = bodies.receipt_check(
                token, venue=DEMO_VENUE, device="counter-1", scanned_at=datetime.now(UTC),
                offline=True,
            )  # fmt: skip
            request = journal.begin(
                RequestKind.RECEIPT, body, tx=tx, amount_cents=1000, offline=True,
                now=time.time() - 3600,
            )  # fmt: skip
            journal.record(
                RequestKind.RECEIPT, "checked_offline", tx=tx, amount_cents=1000,
                request_id=request.id, synced=False, shown_accepted=True,
            )  # fmt: skip
            keys[tx] = request.key
    return keys


def test_a_damaged_requests_page_at_start_uploads_every_salvaged_request(
    make_sim: Any, tmp_path: Path, refbackend: ReferenceBackend
) -> None:
    path = tmp_path / "journal.db"
    keys = accepted_offline(path, refbackend)
    scramble_table_page(path, "requests")

    sim = make_sim()
    alarm = sim.wait_view(Alarm)
    assert alarm.kind == "journal" and alarm.salvage is not None
    sim.wait_synced(timeout=30.0)
    with Journal.open(path) as journal:
        recovery = last_recovery(journal.get_meta)
        kept = {r["tx"]: r["idem_key"] for r in journal.conn.execute("SELECT * FROM requests")}
    assert recovery is not None and recovery.how == "salvaged"
    lost = WAITING - len(kept)
    assert 0 < lost < WAITING // 2 and recovery.lost["requests"] == lost
    # The alarm says how many rows were kept and lost, in the screen's language.
    assert alarm.salvage == Salvage(recovery.rows_salvaged, recovery.rows_lost)
    assert all(keys[tx] == key for tx, key in kept.items())  # their original keys
    # At the backend: each salvaged acceptance checked once, under its original key.
    stored = sim.backend_rows("SELECT key FROM idempotency")
    assert {r["key"] for r in stored} >= set(kept.values())
    for tx in kept:
        (row,) = sim.backend_rows("SELECT state, offline FROM transactions WHERE tx = ?", (tx,))
        assert (row["state"], row["offline"]) == ("checked", 1)
    # The technician screen says how many rows were salvaged and lost.
    sim.press("up", long=True)
    tech = sim.wait_view(TechInfo)
    assert tech.journal_salvaged == recovery.rows_salvaged and tech.journal_lost == lost


def _recovery(path: Path) -> Recovery | None:
    """The journal's recorded mending, or None (none yet, or still damaged)."""
    try:
        with Journal.open(path, recover=False) as journal:
            return last_recovery(journal.get_meta)
    except JournalError:
        return None
