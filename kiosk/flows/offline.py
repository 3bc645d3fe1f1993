"""Limits for accepting receipts while the backend cannot be reached (config ``[offline]``).

Besides the exposure limits, two guards:

- the age of the last sync is measured so that a wall-clock jump cannot stretch
  it (:func:`kiosk.clock.elapsed_since`): the sync's time is stored with a
  boot-time clock reading (:class:`SyncStamp`);
- conflicts: every offline check the backend later refuses is a double
  redemption. Once ``max_conflicts_per_day`` of them fall in the last 24 h,
  offline acceptance is off until they age out or a technician clears them
  (``kiosk offline clear-conflicts``); the clear is kept in the journal, and
  only conflicts after it count.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from kiosk.clock import BootTime, elapsed_since
from kiosk.config import OfflineConfig
from kiosk.journal import Journal
from kiosk.journal.schema import translated
from kiosk.vocabulary import Word

log = logging.getLogger("kiosk.offline")

DAY_S = 86400.0
CONFLICTS_CLEARED_META = "conflicts_cleared"
KEEP_CLEARS = 50


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


@dataclass(frozen=True)
class ConflictsCleared:
    """One clear by a technician: when, by whom, and how many conflicts it set aside."""

    at: float
    by: str
    conflicts: int


def clears(journal: Journal) -> list[ConflictsCleared]:
    """Every clear kept in the journal, oldest first (a damaged record reads as none)."""
    text = journal.get_meta(CONFLICTS_CLEARED_META)
    if not text:
        return []
    try:
        return [
            ConflictsCleared(float(c["at"]), str(c["by"]), int(c["conflicts"]))
            for c in json.loads(text)
        ]
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring a damaged record of conflict clears")
        return []


def counted_since(journal: Journal, now: float) -> float:
    """Conflicts at or after this time count: 24 h back, or the last clear if later."""
    since = now - DAY_S
    done = clears(journal)
    return max(since, done[-1].at) if done else since


def conflicts_24h(journal: Journal, now: float) -> int:
    """Conflict rows (by the time of their scan) that count now. Raises JournalError."""
    with translated():
        row = journal.conn.execute(
            "SELECT COUNT(*) FROM outcomes WHERE outcome = ? AND at >= ?",
            (Word.CONFLICT, counted_since(journal, now)),
        ).fetchone()
    return int(row[0])


def clear_conflicts(journal: Journal, *, now: float, by: str) -> ConflictsCleared:
    """Set the conflicts counted now aside, durably; offline acceptance may resume."""
    record = ConflictsCleared(now, by, conflicts_24h(journal, now))
    kept = [*clears(journal), record][-KEEP_CLEARS:]
    journal.set_meta(
        CONFLICTS_CLEARED_META,
        json.dumps([{"at": c.at, "by": c.by, "conflicts": c.conflicts} for c in kept]),
    )
    log.warning(
        "offline conflicts cleared by %s: %d conflict(s) of the last 24 h no longer count",
        by,
        record.conflicts,
    )
    return record
