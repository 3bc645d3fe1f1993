"""A damaged journal keeps what can be kept: an index is rebuilt in place; a damaged table
page costs only the rows on it, every other request, outcome, conflict and tally row is
carried into the fresh journal, and the counts are kept for the technician."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from journal_damage import scramble_index, scramble_table_page

from kiosk.journal import Journal
from kiosk.journal.repair import RECOVERY_META, Recovery
from kiosk.vocabulary import RequestKind

REQUESTS = 60


def filled(path: Path) -> dict[int, tuple[str, str]]:
    """A journal with pending offline checks (each with its outcome), a conflict, a
    tally row and cached meta; returns request id -> (key, body)."""
    with Journal.open(path) as j:
        for i in range(REQUESTS):
            tx = f"tx_{i:016d}"
            body = {"token": "x" * 300, "venue": "ven_demo0000000000", "offline": True, "n": i}
            request = j.begin(RequestKind.RECEIPT, body, tx=tx, amount_cents=1000, offline=True)
            j.record(
                RequestKind.RECEIPT, "checked_offline", tx=tx, amount_cents=1000,
                request_id=request.id, synced=False, shown_accepted=True,
            )  # fmt: skip
        j.record(RequestKind.RECEIPT, "conflict", tx="tx_conflict000000001", reason="cancelled")
        j.conn.execute("INSERT INTO pruned_outcomes (outcome, scans) VALUES ('checked', 41)")
        j.set_meta("last_sync", "1700000000")
        return {r.id: (r.key, r.text) for r in j.open_requests()}


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_scrambled_index_is_rebuilt_in_place(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    before = filled(path)
    scramble_index(path, "outcomes_tx")
    with Journal.open(path) as j:
        assert j.recovery is not None and j.recovery.how == "reindexed"
        assert j.moved_aside is None
        assert [r.outcome for r in j.receipt_history("tx_0000000000000007")] == ["checked_offline"]
        assert {r.id: (r.key, r.text) for r in j.open_requests()} == before
        assert Recovery.from_json(j.get_meta(RECOVERY_META)) == j.recovery
    assert not [n for n in names(tmp_path) if ".corrupt-" in n or ".salvage" in n]


def test_a_damaged_table_page_costs_only_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    before = filled(path)
    scramble_table_page(path, "requests")
    with Journal.open(path) as j:
        recovery = j.recovery
        assert recovery is not None and recovery.how == "salvaged", recovery
        kept = {r.id: (r.key, r.text) for r in j.open_requests()}
        outcomes = j.outcomes()
        tally = j.conn.execute("SELECT outcome, scans FROM pruned_outcomes").fetchall()
        meta = j.get_meta("last_sync")
        stored = Recovery.from_json(j.get_meta(RECOVERY_META))
    # Every request read back is the same request: same Idempotency-Key, same body.
    assert kept and all(before[rid] == row for rid, row in kept.items())
    lost = len(before) - len(kept)
    assert 0 < lost < REQUESTS // 2
    assert recovery.salvaged["requests"] == len(kept) and recovery.lost["requests"] == lost
    assert recovery.unknown == []
    # The other tables were not damaged: all of their rows are there.
    assert len(outcomes) == REQUESTS + 1 and recovery.lost["outcomes"] == 0
    assert any(o.outcome == "conflict" for o in outcomes)
    assert [tuple(r) for r in tally] == [("checked", 41)] and meta == "1700000000"
    assert stored == recovery
    assert recovery.rows_salvaged == len(kept) + (REQUESTS + 1) + 1 + recovery.salvaged["meta"]
    assert recovery.summary().startswith(f"{recovery.rows_salvaged} rows salvaged, {lost} lost")
    assert recovery.orphaned == lost  # their scans are kept; their uploads cannot be
    # The damaged file is kept beside the fresh one, unchanged in its readable rows.
    assert j.moved_aside is not None and j.moved_aside.exists()
    aside = sqlite3.connect(j.moved_aside)
    try:
        assert aside.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0] == REQUESTS + 1
    finally:
        aside.close()
    assert not [n for n in names(tmp_path) if ".salvage" in n]


def test_rows_below_a_damaged_interior_page_are_read_from_their_leaves(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    before = filled(path)
    with Journal.open(path) as j:  # a row deleted earlier stays deleted
        j.conn.execute("UPDATE outcomes SET request_id = NULL WHERE request_id = 7")
        gone = j.conn.execute("DELETE FROM requests WHERE id = 7 RETURNING id").fetchall()
    assert [tuple(r) for r in gone] == [(7,)]
    del before[7]
    scramble_table_page(path, "requests", kind="internal")
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError):  # SQLite itself can read none of them now
        conn.execute("SELECT body FROM requests").fetchall()
    conn.close()
    with Journal.open(path) as j:
        recovery = j.recovery
        kept = {r.id: (r.key, r.text) for r in j.open_requests()}
    assert recovery is not None and recovery.how == "salvaged"
    assert kept == before  # every request, same key and body; the deleted one not back
    assert recovery.lost == {"requests": 0, "outcomes": 0, "meta": 0, "pruned_outcomes": 0}
    assert recovery.orphaned == 0


def test_a_journal_that_is_not_a_database_is_started_afresh_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    path.write_bytes(b"this is not a database" * 500)
    with Journal.open(path) as j:
        recovery = j.recovery
        assert recovery is not None and recovery.how == "salvaged"
        assert recovery.rows_salvaged == 0 and set(recovery.unknown) >= {"requests", "outcomes"}
        assert "unknown number" in recovery.summary()
        assert j.open_requests() == [] and j.moved_aside is not None
    assert j.moved_aside.read_bytes().startswith(b"this is not a database")  # kept


def test_leaf_pages_of_any_bytes_are_read_without_an_error(tmp_path: Path) -> None:
    import random

    from kiosk.journal.pages import leaf_rows

    path = tmp_path / "journal.db"
    filled(path)
    good = path.read_bytes()
    rows = list(leaf_rows(path))
    assert len(rows) >= REQUESTS * 2  # the requests and outcomes, from their leaves
    rng = random.Random(21)
    for _ in range(30):  # a file scrambled at random places reads as what it can
        data = bytearray(good)
        for _ in range(200):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data))
        assert isinstance(list(leaf_rows(path)), list)
    path.write_bytes(b"SQLite format 3\0" + bytes(rng.randrange(256) for _ in range(8192)))
    assert isinstance(list(leaf_rows(path)), list)
