"""The tally of pruned outcomes: a prune adds what it deletes in the same commit, all or none."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kiosk.errors import JournalError
from kiosk.figures import outcome_counts
from kiosk.journal import Journal
from kiosk.vocabulary import RequestKind, Word

DAY = 86400.0
NOW = 400 * DAY
OLD = NOW - 100 * DAY  # older than a 90-day retention


def fill(j: Journal) -> None:
    """Old synced rows (pruned), one old unsynced row (kept) and recent rows (kept)."""
    done = j.begin(RequestKind.RECEIPT, {"token": "old"}, tx="tx_old", now=OLD)
    j.settle(done.id, "checked", 200, {"tx": "tx_old"}, word=Word.CHECKED, now=OLD)
    j.record(RequestKind.RECEIPT, Word.CHECKED, tx="tx_old", request_id=done.id, now=OLD)
    j.record(RequestKind.RECEIPT, Word.CHECKED, tx="tx_old2", now=OLD)
    j.record(RequestKind.RECEIPT, Word.CONFLICT, tx="tx_conflict", now=OLD)
    j.record(RequestKind.CHARGE, Word.CHARGED, tx="tx_charge", now=OLD)
    j.record(RequestKind.RECEIPT, Word.CHECKED_OFFLINE, tx="tx_wait", synced=False, now=OLD)
    j.record(RequestKind.RECEIPT, Word.CHECKED, tx="tx_new", now=NOW)
    j.record(RequestKind.RECEIPT, Word.CONFLICT, tx="tx_new_conflict", now=NOW)


EXPECTED = {"charged": 1, "checked": 3, "checked_offline": 1, "conflict": 2}


def tally(j: Journal) -> dict[str, int]:
    rows = j.conn.execute("SELECT outcome, scans FROM pruned_outcomes ORDER BY outcome")
    return {str(r[0]): int(r[1]) for r in rows}


def test_prune_moves_old_rows_into_the_tally_and_the_totals_stay(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as j:
        fill(j)
        assert outcome_counts(j) == EXPECTED
        assert j.prune(90, now=NOW) == 4
        assert tally(j) == {"charged": 1, "checked": 2, "conflict": 1}
        assert {o.tx for o in j.outcomes()} == {"tx_wait", "tx_new", "tx_new_conflict"}
        # The answered request went with its outcome row.
        assert j.conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 0
        assert outcome_counts(j) == EXPECTED
        # A second prune later adds to the tally, never counting a row twice.
        j.record(RequestKind.RECEIPT, Word.CHECKED, tx="tx_later", now=NOW + DAY)
        assert j.prune(90, now=NOW + 200 * DAY) == 3
        assert tally(j) == {"charged": 1, "checked": 4, "conflict": 2}
        assert outcome_counts(j) == dict(EXPECTED, checked=4)
        assert j.prune(90, now=NOW + 200 * DAY) == 0
        assert outcome_counts(j) == dict(EXPECTED, checked=4)


@pytest.mark.parametrize(
    "table",
    [
        "outcomes",  # the tally is written, then deleting the outcome rows fails
        "requests",  # both are written, then deleting the answered requests fails
    ],
)
def test_a_failure_inside_the_prune_rolls_back_tally_and_delete(tmp_path: Path, table: str) -> None:
    with Journal.open(tmp_path / "j.db") as j:
        fill(j)
        # A real SQLite error raised by the database itself inside the prune's transaction.
        j.conn.execute(
            f"CREATE TEMP TRIGGER refuse BEFORE DELETE ON main.{table}"
            " BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
        )
        with pytest.raises(JournalError, match="refused by test"):
            j.prune(90, now=NOW)
        assert not j.conn.in_transaction
        assert tally(j) == {}
        assert len(j.outcomes()) == 7
        assert outcome_counts(j) == EXPECTED
        j.conn.execute("DROP TRIGGER refuse")
        assert j.prune(90, now=NOW) == 4
        assert tally(j) == {"charged": 1, "checked": 2, "conflict": 1}
        assert outcome_counts(j) == EXPECTED


def test_a_crash_between_tally_and_delete_neither_loses_nor_counts_twice(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with Journal.open(path) as j:
        fill(j)
    # Another process prunes and dies (no cleanup, no rollback) after the tally is
    # written and before the outcome rows are deleted; its exit code tells the tally
    # it had written (40 + the 4 rows to prune).
    script = textwrap.dedent(
        f"""
        import os
        from kiosk.journal import Journal
        j = Journal.open({str(path)!r})
        j.conn.create_function("die", 1, lambda n: os._exit(40 + (n or 0)))
        j.conn.execute(
            "CREATE TEMP TRIGGER die_here BEFORE DELETE ON main.outcomes"
            " BEGIN SELECT die((SELECT SUM(scans) FROM main.pruned_outcomes)); END"
        )
        j.prune(90, now={NOW!r})
        """
    )
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 44, done.stderr
    with Journal.open(path) as j:
        assert tally(j) == {}
        assert len(j.outcomes()) == 7
        assert outcome_counts(j) == EXPECTED
        assert j.prune(90, now=NOW) == 4
        assert outcome_counts(j) == EXPECTED
