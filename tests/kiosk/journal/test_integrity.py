"""The journal's quick_check: a scrambled index is caught at open, not read as "never seen"."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from journal_damage import scramble_index

from kiosk.errors import JournalCorrupt
from kiosk.journal import Journal
from kiosk.journal.integrity import quick_check

TX = "tx_0000000000000002"


def accepted_today(path: Path) -> None:
    with Journal.open(path) as j:
        for i in range(4):
            j.record(
                "receipt", "checked", tx=f"tx_{i:016d}", amount_cents=1000, shown_accepted=True
            )
        assert [r.outcome for r in j.receipt_history(TX)] == ["checked"]


def test_a_scrambled_index_hides_an_acceptance_without_an_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    accepted_today(path)
    scramble_index(path)
    conn = sqlite3.connect(path)
    try:
        # What the journal's own lookup would get: no row, no error.
        assert conn.execute("SELECT * FROM outcomes WHERE tx = ?", (TX,)).fetchall() == []
        assert conn.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0] == 4
        assert quick_check(conn) != []
    finally:
        conn.close()


def test_open_rebuilds_a_scrambled_index_in_place(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    accepted_today(path)
    scramble_index(path)
    with Journal.open(path) as j:
        assert j.moved_aside is None and j.recovery is not None
        assert [r.outcome for r in j.receipt_history(TX)] == ["checked"]  # found again
        assert quick_check(j.conn) == []
    assert not [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]


def test_open_without_recover_reports_and_leaves_the_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    accepted_today(path)
    scramble_index(path)
    before = path.read_bytes()
    with pytest.raises(JournalCorrupt, match="quick_check"):
        Journal.open(path, recover=False)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.db"]


def test_an_intact_journal_passes(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    accepted_today(path)
    with Journal.open(path) as j:
        assert j.moved_aside is None
        assert quick_check(j.conn) == []
