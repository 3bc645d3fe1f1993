"""The journal's health figures, read the same way by ``kiosk status`` and the metrics.

One function per figure, each a single read of the journal, so that a figure the
journal learns to keep itself (a quarantine state, a conflict tally) replaces
one function body here and both consumers follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kiosk.clock import Clocks, read_clocks
from kiosk.flows.context import LAST_SYNC_META
from kiosk.flows.offline import SyncStamp, conflicts_24h
from kiosk.journal import Journal
from kiosk.journal.schema import translated
from kiosk.journal.tally import outcome_total, outcome_totals
from kiosk.vocabulary import RequestState, Word

QUARANTINED_STATE = RequestState.QUARANTINED
"""``requests.state`` of a request that failed ``journal.quarantine_after`` times: kept,
retried only every ``journal.quarantine_retry`` seconds, for a person to look at."""


@dataclass(frozen=True)
class JournalFigures:
    """A consistent-enough snapshot of the journal for status and metrics."""

    pending: int
    quarantined: int
    oldest_pending_at: float | None  # Unix time of the oldest unanswered request
    last_sync: float | None  # Unix time of the last successful exchange with the backend
    offline_count: int
    offline_exposure_cents: int
    conflicts: int  # offline checks the backend later found already checked, all time (pruned too)
    conflicts_24h: int  # recorded in the last 24 h (or undatable), not cleared: offline off
    journal_bytes: int
    disk_free_bytes: int  # free space on the journal's file system
    outcomes: dict[str, int] = field(default_factory=dict)  # outcome word -> scans, all time


def read_figures(journal: Journal, clocks: Clocks | None = None) -> JournalFigures:
    """Every figure of :class:`JournalFigures`, read from *journal* at *clocks* (the
    kernel's clocks if None: they date the conflicts). Raises JournalError."""
    clocks = read_clocks() if clocks is None else clocks
    count, total = journal.offline_exposure()
    return JournalFigures(
        pending=journal.pending_count(),
        quarantined=quarantined_count(journal),
        oldest_pending_at=oldest_pending_at(journal),
        last_sync=last_sync(journal),
        offline_count=count,
        offline_exposure_cents=total,
        conflicts=conflicts_total(journal),
        conflicts_24h=conflicts_24h(journal, clocks),
        journal_bytes=journal.size_bytes(),
        disk_free_bytes=journal.free_bytes(),
        outcomes=outcome_counts(journal),
    )


def outcome_counts(journal: Journal) -> dict[str, int]:
    """Scans that reached a result since the journal began, by outcome word: the rows
    ``history --local`` lists plus those pruned after the retention (a counter).

    An offline check that the backend later finds already checked moves from
    ``checked_offline`` to ``conflict``.
    """
    with translated():
        return outcome_totals(journal.conn)


def oldest_pending_at(journal: Journal) -> float | None:
    with translated():
        row = journal.conn.execute(
            "SELECT MIN(created_at) FROM requests WHERE state = 'pending'"
        ).fetchone()
    return None if row[0] is None else float(row[0])


def quarantined_count(journal: Journal) -> int:
    """Requests in the quarantine state (uploads retried only rarely)."""
    with translated():
        row = journal.conn.execute(
            "SELECT COUNT(*) FROM requests WHERE state = ?", (QUARANTINED_STATE,)
        ).fetchone()
    return int(row[0])


def conflicts_total(journal: Journal) -> int:
    """Conflicts since the journal began, pruned ones included (a counter)."""
    with translated():
        return outcome_total(journal.conn, Word.CONFLICT)


def last_sync(journal: Journal) -> float | None:
    stamp = SyncStamp.parse(journal.get_meta(LAST_SYNC_META))
    return None if stamp is None else stamp.wall
