"""Limits for accepting receipts while the backend cannot be reached (config ``[offline]``).

Besides the exposure limits, two guards:

- the age of the last sync is measured so that a wall-clock jump cannot stretch
  it (:func:`kiosk.clock.elapsed_since`): the sync's time is stored with a
  boot-time clock reading (:class:`SyncStamp`);
- conflicts: every offline check the backend later refuses is a double
  redemption. Once ``max_conflicts_per_day`` of them were recorded in the last
  24 h, offline acceptance is off until they age out or a technician clears them
  (``kiosk offline clear-conflicts``). Their age is measured like the sync's (each
  conflict is stamped with a boot-time reading when it is recorded; one that cannot
  be dated counts), and the clear is kept in the journal as what it set aside, not
  as a time: only conflicts recorded after it count, whatever the clocks do
  (:mod:`kiosk.journal.conflict_book`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kiosk.clock import BootTime, Clocks, elapsed_since
from kiosk.config import OfflineConfig
from kiosk.journal import Journal
from kiosk.journal.conflict_book import (
    CONFLICTS_CLEARED_META,
    Conflict,
    ConflictRecord,
    ConflictsCleared,
    parse_clears,
    read_record,
    write_clear,
)
from kiosk.journal.schema import translated

log = logging.getLogger("kiosk.offline")

DAY_S = 86400.0


@dataclass(frozen=True)
class SyncStamp:
    """When the backend last answered: wall time, and the boot-time clock if known.

    Stored as one meta value, ``"<wall> [<boot id> <seconds since boot>]"``; a
    bare number (older journals) parses with ``boot`` None.
    """

    wall: float
    boot: BootTime | None = None

    def encode(self) -> str:
        if self.boot is None:
            return repr(self.wall)
        return f"{self.wall!r} {self.boot.boot_id} {self.boot.seconds!r}"

    @classmethod
    def parse(cls, text: str | None) -> SyncStamp | None:
        if not text:
            return None
        parts = text.split()
        try:
            wall = float(parts[0])
            if len(parts) == 3:
                return cls(wall, BootTime(parts[1], float(parts[2])))
            return cls(wall) if len(parts) == 1 else None
        except ValueError:
            return None


def sync_age(
    stamp: SyncStamp | None, *, now: float, now_boot: BootTime | None, clock_synced: bool
) -> float | None:
    """Seconds since the last sync, or None when it cannot be trusted (see elapsed_since)."""
    if stamp is None:
        return None
    return elapsed_since(
        stamp.wall, stamp.boot, now=now, now_boot=now_boot, clock_synced=clock_synced
    )


@dataclass(frozen=True)
class OfflinePolicy:
    """Decides whether one more receipt may be accepted offline."""

    cfg: OfflineConfig

    def refusal(
        self,
        amount_cents: int,
        *,
        exposure: tuple[int, int],
        sync_age: float | None,
        conflicts_24h: int = 0,
    ) -> str | None:
        """None when the receipt may be accepted offline, else the reason word.

        *exposure* is (count, cents) of offline checks not yet uploaded;
        *sync_age* the seconds since the last successful exchange with the backend
        (:func:`sync_age`; None: never, or not measurable); *conflicts_24h* the
        conflicts that count now (:func:`conflicts_24h`).
        """
        if not self.cfg.enabled:
            return "offline_disabled"
        if self.conflicts_reached(conflicts_24h):
            return "conflicts"
        if sync_age is None or sync_age >= self.cfg.max_age_hours * 3600:
            return "stale_sync"
        if amount_cents > self.cfg.max_amount_cents:
            return "limit_amount"
        count, total = exposure
        if count + 1 > self.cfg.max_count:
            return "limit_count"
        if total + amount_cents > self.cfg.max_total_cents:
            return "limit_total"
        return None

    def conflicts_reached(self, conflicts_24h: int) -> bool:
        """True when this many conflicts turn offline acceptance off."""
        return conflicts_24h >= self.cfg.max_conflicts_per_day


# --- conflicts and their clearing ------------------------------------------------------------


def clears(journal: Journal) -> list[ConflictsCleared]:
    """Every clear kept in the journal, oldest first (a damaged record reads as none)."""
    return parse_clears(journal.get_meta(CONFLICTS_CLEARED_META))


def counted_conflicts(record: ConflictRecord, clocks: Clocks) -> list[Conflict]:
    """The conflicts that turn offline acceptance off now: not set aside by the last
    clear, and recorded less than 24 h ago, or at a time that cannot be dated (another
    boot with the clock not synchronised, a time in the future): refusing is the safe side."""
    counted = []
    for conflict in record.not_cleared():
        age = clocks.since(conflict.wall, conflict.boot)
        if age is None or age < DAY_S:
            counted.append(conflict)
    return counted


def conflicts_24h(journal: Journal, clocks: Clocks) -> int:
    """How many conflicts count now (:func:`counted_conflicts`). Raises JournalError."""
    with translated():
        record = read_record(journal.conn)
    return len(counted_conflicts(record, clocks))


def clear_conflicts(journal: Journal, clocks: Clocks, *, by: str) -> ConflictsCleared:
    """Set aside every conflict recorded so far, durably; offline acceptance may resume.

    What is set aside does not depend on any clock: the conflicts stamped so far, and
    unstamped ones up to the highest conflict row now (:mod:`kiosk.journal.conflict_book`).
    """
    with journal.transaction():
        record = read_record(journal.conn)
        upto = max([0, *(c.id for c in record.conflicts), *(c.upto_id or 0 for c in record.clears)])
        cleared = ConflictsCleared(
            clocks.wall,
            by,
            len(counted_conflicts(record, clocks)),
            seq=record.next_seq,
            upto_id=upto,
        )
        write_clear(journal.conn, cleared)
    log.warning(
        "offline conflicts cleared by %s: %d conflict(s) of the last 24 h no longer count",
        by,
        cleared.conflicts,
    )
    return cleared
