"""A scan sent but not recorded before a power cut is recovered before the counter serves.

An online scan's answer and outcome are committed without waiting for the disk
and flushed once the result is shown. A power cut in that window leaves the disk
as the request's own commit left it: the request marked as sent, no answer, no
outcome row. The tests put the journal in exactly that state (what the disk held,
written with SQL), start a counter on it against the real reference backend, and
check that the customer is never served twice nor the money counted twice.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import Any as Sim

from kiosk.journal import Journal
from kiosk.journal.flush import WalFlusher, flush_wal
from refbackend import DEMO_VENUE


def cut_before_the_answer_was_flushed(journal_path: str, tx: str) -> float:
    """The journal as a power cut between the request's flush and the answer's leaves it.

    Returns the request's scan time."""
    conn = sqlite3.connect(journal_path, isolation_level=None)
    try:
        (rid, created), *others = conn.execute(
            "SELECT id, created_at FROM requests WHERE tx = ?", (tx,)
        ).fetchall()
        assert not others
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM outcomes WHERE request_id = ?", (rid,))
        conn.execute(
            "UPDATE requests SET state = 'pending', status = NULL, http_status = NULL,"
            " response = NULL, settled_at = NULL, attempts = 0, maybe_delivered = 1"
            " WHERE id = ?",
            (rid,),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return float(created)


def checked_answers(sim: Sim, tx: str) -> list[str]:
    """Idempotency keys of the backend's 200 ``checked`` answers for *tx*."""
    rows = sim.backend_rows("SELECT key, code, body FROM idempotency")
    return [
        str(r["key"])
        for r in rows
        if r["code"] == 200 and r["body"] and tx.encode() in bytes(r["body"])
    ]


def test_answer_lost_in_a_power_cut_is_recovered_first_and_a_rescan_is_already_accepted(
    make_sim: Any,
) -> None:
    first = make_sim()
    tx, token = first.backend.mint_receipt(DEMO_VENUE, 6500)
    assert first.scan(token).word == "checked"
    first.counter.stop()
    key = first.journal_rows("SELECT idem_key FROM requests WHERE tx = ?", (tx,))[0][0]
    scanned_at = cut_before_the_answer_was_flushed(first.cfg.journal.path, tx)

    after = make_sim()  # start-up recovers before it serves: the row is there already
    rows = after.journal_rows("SELECT * FROM outcomes WHERE tx = ? ORDER BY id", (tx,))
    assert [(r["outcome"], r["synced"], r["shown_accepted"]) for r in rows] == [("checked", 1, 1)]
    assert rows[0]["at"] == scanned_at
    assert rows[0]["amount_cents"] == 6500
    request = after.journal_rows("SELECT state, status, idem_key FROM requests WHERE tx = ?", (tx,))
    assert [tuple(r) for r in request] == [("done", "checked", key)]

    after.backend.pause()  # the rescan is answered from the journal
    again = after.scan(token)
    assert again.word == "already_checked" and again.reason == "local"
    assert again.checked_at is not None
    assert again.checked_at.strftime("%H:%M") == datetime.fromtimestamp(
        scanned_at, again.checked_at.tzinfo
    ).strftime("%H:%M")
    after.backend.resume()

    assert checked_answers(after, tx) == [key]  # one check at the backend, under the first key
    with Journal.open(after.cfg.journal.path) as journal:
        money = [o for o in journal.outcomes() if o.tx == tx and o.outcome == "checked"]
        assert len(money) == 1  # one row of money in the local history
        assert journal.pending_count() == 0


def test_recovery_waits_for_an_unreachable_backend_and_never_accepts_twice(
    make_sim: Any,
) -> None:
    first = make_sim()
    tx, token = first.backend.mint_receipt(DEMO_VENUE, 5500)
    assert first.scan(token).word == "checked"
    first.counter.stop()
    scanned_at = cut_before_the_answer_was_flushed(first.cfg.journal.path, tx)

    first.backend.pause()  # the power cut took the network with it
    after = make_sim()
    rows = after.journal_rows("SELECT outcome, synced, at FROM outcomes WHERE tx = ?", (tx,))
    assert [tuple(r) for r in rows] == [("checked", 0, scanned_at)]  # waiting for the answer

    again = after.scan(token)  # no network: still the acceptance shown before the cut
    assert again.word == "already_checked" and again.reason == "local"

    after.backend.resume()
    after.wait_synced()
    sql = "SELECT outcome, synced FROM outcomes WHERE tx = ? ORDER BY id"
    rows = after.journal_rows(sql, (tx,))
    assert [tuple(r) for r in rows] == [("checked", 1), ("already_checked", 1)]
    assert len(checked_answers(after, tx)) == 1


def test_unsent_request_of_an_earlier_run_is_not_taken_for_a_shown_result(make_sim: Any) -> None:
    """Journaled but never marked as sent (the offline path before its outcome): nothing
    was shown, so no outcome row is made up for it."""
    first = make_sim()
    first.counter.stop()
    with Journal.open(first.cfg.journal.path) as journal:
        journal.begin("receipt", {"token": "x", "offline": False}, tx="tx_unsent", now=1.0)
    after = make_sim()
    rows = after.journal_rows("SELECT * FROM outcomes WHERE tx = 'tx_unsent'")
    assert rows == []


def test_answer_commit_waits_for_no_flush_and_the_flusher_makes_it_durable(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as journal:
        level = journal.conn.execute("PRAGMA synchronous").fetchone()[0]
        with journal.transaction(durable=False):
            inside = journal.conn.execute("PRAGMA synchronous").fetchone()[0]
            journal.set_meta("k", "v")
        after = journal.conn.execute("PRAGMA synchronous").fetchone()[0]
        assert (level, inside, after) == (2, 1, 2)  # FULL, NORMAL for that commit, FULL again
        with journal.transaction(), journal.transaction(durable=False):  # joins the durable one
            assert journal.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert flush_wal(journal.path) is True
        flusher = WalFlusher(journal.path)
        flusher.start()
        try:
            for _ in range(3):
                flusher.request()
            assert flusher.wait_idle(5.0)
            assert 1 <= flusher.flushes <= 3
        finally:
            flusher.stop()
    assert flush_wal(tmp_path / "j.db") is False  # closed: checkpointed, no log left
