"""Scans counted since the journal began: the outcome rows kept plus a tally of those pruned.

``kiosk_scans_total`` and ``kiosk_offline_conflicts_total`` are counted from the journal,
so that they survive restarts. The prune of rows older than ``[journal] retention_days``
adds what it deletes to ``pruned_outcomes`` in the same transaction as the delete: the
counters never go down, and a crash or a failed write neither loses nor counts twice.
Only synced rows are pruned, and a synced row's outcome word no longer changes.
"""

from __future__ import annotations

import sqlite3

from kiosk.vocabulary import Word

_PRUNABLE = "synced = 1 AND at < ?"


def prune_outcomes(conn: sqlite3.Connection, cutoff: float) -> int:
    """Tally, then delete, the synced outcome rows older than *cutoff*; returns how many.

    Call inside the caller's write transaction (it holds the write lock, so both
    statements see the same rows, and either both are committed or neither)."""
    conn.execute(
        "INSERT INTO pruned_outcomes (outcome, scans)"
        f" SELECT outcome, COUNT(*) FROM outcomes WHERE {_PRUNABLE} GROUP BY outcome"
        " ON CONFLICT(outcome) DO UPDATE SET scans = scans + excluded.scans",
        (cutoff,),
    )
    return int(conn.execute(f"DELETE FROM outcomes WHERE {_PRUNABLE}", (cutoff,)).rowcount)


def outcome_totals(conn: sqlite3.Connection) -> dict[str, int]:
    """Scans that reached a result since the journal began, by outcome word.

    One statement, so one snapshot: a prune committed meanwhile is seen whole or not
    at all. Raises sqlite3 errors (callers translate them)."""
    rows = conn.execute(
        "SELECT outcome, SUM(scans) FROM ("
        " SELECT outcome, COUNT(*) AS scans FROM outcomes GROUP BY outcome"
        " UNION ALL SELECT outcome, scans FROM pruned_outcomes"
        ") GROUP BY outcome ORDER BY outcome"
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def outcome_total(conn: sqlite3.Connection, word: Word) -> int:
    """Scans with the outcome *word* since the journal began (kept and pruned)."""
    row = conn.execute(
        "SELECT (SELECT COUNT(*) FROM outcomes WHERE outcome = ?)"
        " + COALESCE((SELECT scans FROM pruned_outcomes WHERE outcome = ?), 0)",
        (word, word),
    ).fetchone()
    return int(row[0])
