"""The journal's record of conflicts: when each was recorded, and the technician's clears.

A conflict is an offline acceptance the backend later refused: its outcome row takes the
word ``conflict`` in the commit that settles the backend's answer. Whether it still turns
offline acceptance off (:mod:`kiosk.flows.offline`) depends on how long ago the kiosk
recorded it, measured on clocks that no one can set back (:func:`kiosk.clock.elapsed_since`),
and on whether a technician set it aside since. Both are kept in ``meta``:

``conflict_stamps``
    ``{"next": n, "stamps": {"<outcome id>": [seq, wall, boot id, boot s]}}``, written in
    the commit that makes the row a conflict. ``seq`` numbers the conflicts in the order
    they were recorded (never reused: ``next`` is the following one); the boot id is
    ``""`` where the kernel gave none. At most :data:`KEEP_STAMPS`, the newest; a clear
    drops the ones it set aside.
``conflicts_cleared``
    the clears, oldest first (at most :data:`KEEP_CLEARS`): ``at`` (wall time), ``by``,
    ``conflicts`` (how many counted then) and what it set aside whatever the clocks do:
    ``seq`` (conflicts stamped below it) and ``upto_id`` (unstamped conflicts with an
    outcome id up to it). An older release's record has neither: it sets aside the
    conflicts whose wall time is before its ``at``, as that release did.

A conflict without a stamp (an older release's, or one whose stamp a salvage lost, or the
oldest beyond :data:`KEEP_STAMPS`) is dated by its row's wall time alone.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from kiosk.clock import BootTime
from kiosk.vocabulary import Word, resolved_word

log = logging.getLogger("kiosk.journal")

CONFLICT_STAMPS_META = "conflict_stamps"
CONFLICTS_CLEARED_META = "conflicts_cleared"
KEEP_STAMPS = 200
KEEP_CLEARS = 50


@dataclass(frozen=True)
class ConflictStamp:
    """When the kiosk recorded a conflict: its place in the order, wall and boot time."""

    seq: int
    wall: float
    boot: BootTime | None


@dataclass(frozen=True)
class Conflict:
    """One conflict row and its stamp (None: unstamped, see the module's notes)."""

    id: int
    at: float  # the row's wall time (its scan's)
    stamp: ConflictStamp | None

    @property
    def wall(self) -> float:
        return self.at if self.stamp is None else self.stamp.wall

    @property
    def boot(self) -> BootTime | None:
        return None if self.stamp is None else self.stamp.boot


@dataclass(frozen=True)
class ConflictsCleared:
    """One clear by a technician: when, by whom, how many conflicts counted then, and
    what it set aside (``seq`` and ``upto_id``; None in an older release's record)."""

    at: float
    by: str
    conflicts: int
    seq: int | None = None
    upto_id: int | None = None

    def sets_aside(self, conflict: Conflict) -> bool:
        """Whether *conflict* was recorded before this clear."""
        if self.seq is None or self.upto_id is None:
            return conflict.wall < self.at  # an older release's clear: by the wall clock
        if conflict.stamp is not None:
            return conflict.stamp.seq < self.seq
        return conflict.id <= self.upto_id

    def as_json(self) -> dict[str, object]:
        return {
            "at": self.at,
            "by": self.by,
            "conflicts": self.conflicts,
            "seq": self.seq,
            "upto_id": self.upto_id,
        }


@dataclass(frozen=True)
class ConflictRecord:
    """Every conflict row with its stamp, and the clears, read in one snapshot."""

    conflicts: tuple[Conflict, ...]
    clears: tuple[ConflictsCleared, ...]
    next_seq: int

    def not_cleared(self) -> list[Conflict]:
        """The conflicts the last clear did not set aside."""
        if not self.clears:
            return list(self.conflicts)
        last = self.clears[-1]
        return [c for c in self.conflicts if not last.sets_aside(c)]


def read_record(conn: sqlite3.Connection) -> ConflictRecord:
    """The conflict rows, their stamps and the clears in one read snapshot (joins an open
    transaction). Raises sqlite3.Error; a damaged meta value reads as none."""
    began = not conn.in_transaction
    if began:
        conn.execute("BEGIN")
    try:
        rows = conn.execute(
            "SELECT id, at FROM outcomes WHERE outcome = ? ORDER BY id", (Word.CONFLICT,)
        ).fetchall()
        stamps_text = _meta(conn, CONFLICT_STAMPS_META)
        clears_text = _meta(conn, CONFLICTS_CLEARED_META)
    finally:
        if began:
            conn.execute("COMMIT")
    next_seq, stamps = parse_stamps(stamps_text)
    clears = parse_clears(clears_text)
    return ConflictRecord(
        tuple(Conflict(int(r[0]), float(r[1]), stamps.get(int(r[0]))) for r in rows),
        tuple(clears),
        _after_clears(next_seq, clears),
    )


def became_conflicts(resolved: Iterable[tuple[int, Word]], answer: Word) -> list[int]:
    """Of outcome rows (id, word shown) resolved with *answer*, those it made conflicts."""
    return [
        row_id
        for row_id, shown in resolved
        if shown != Word.CONFLICT and resolved_word(shown, answer) == Word.CONFLICT
    ]


def stamp_conflicts(
    conn: sqlite3.Connection, outcome_ids: list[int], *, now: float, boot: BootTime | None
) -> None:
    """Stamp newly recorded conflicts (call inside the commit that records them)."""
    if not outcome_ids:
        return
    next_seq, stamps = parse_stamps(_meta(conn, CONFLICT_STAMPS_META))
    next_seq = _after_clears(next_seq, parse_clears(_meta(conn, CONFLICTS_CLEARED_META)))
    for row_id in outcome_ids:
        stamps[row_id] = ConflictStamp(next_seq, now, boot)
        next_seq += 1
    _write_stamps(conn, next_seq, stamps)


def write_clear(conn: sqlite3.Connection, cleared: ConflictsCleared) -> None:
    """Keep *cleared* after the earlier clears, and drop the stamps it set aside (call
    inside one commit with the read that made it)."""
    kept = [*parse_clears(_meta(conn, CONFLICTS_CLEARED_META)), cleared][-KEEP_CLEARS:]
    _set_meta(conn, CONFLICTS_CLEARED_META, json.dumps([c.as_json() for c in kept]))
    next_seq, stamps = parse_stamps(_meta(conn, CONFLICT_STAMPS_META))
    if cleared.seq is not None:
        stamps = {i: s for i, s in stamps.items() if s.seq >= cleared.seq}
    _write_stamps(conn, next_seq, stamps)


def _after_clears(next_seq: int, clears: list[ConflictsCleared]) -> int:
    """The next seq, never one a clear set aside already (the stamps may have been lost)."""
    return max([next_seq, *(c.seq for c in clears if c.seq is not None)])


def parse_stamps(text: str | None) -> tuple[int, dict[int, ConflictStamp]]:
    """(next seq, outcome id -> stamp) of a ``conflict_stamps`` value; (0, {}) if damaged."""
    if not text:
        return 0, {}
    try:
        doc = json.loads(text)
        stamps = {
            int(key): ConflictStamp(
                int(seq), float(wall), BootTime(str(boot_id), float(boot_s)) if boot_id else None
            )
            for key, (seq, wall, boot_id, boot_s) in doc["stamps"].items()
        }
        next_seq = max([int(doc["next"]), *(s.seq + 1 for s in stamps.values())])
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("ignoring a damaged record of conflict times")
        return 0, {}
    return next_seq, stamps


def parse_clears(text: str | None) -> list[ConflictsCleared]:
    """The clears of a ``conflicts_cleared`` value, oldest first (damaged: none)."""
    if not text:
        return []
    try:
        return [
            ConflictsCleared(
                float(c["at"]),
                str(c["by"]),
                int(c["conflicts"]),
                None if c.get("seq") is None else int(c["seq"]),
                None if c.get("upto_id") is None else int(c["upto_id"]),
            )
            for c in json.loads(text)
        ]
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("ignoring a damaged record of conflict clears")
        return []


def _write_stamps(
    conn: sqlite3.Connection, next_seq: int, stamps: dict[int, ConflictStamp]
) -> None:
    newest = sorted(stamps.items(), key=lambda item: item[1].seq)[-KEEP_STAMPS:]
    doc = {
        "next": next_seq,
        "stamps": {
            str(row_id): [
                s.seq,
                s.wall,
                s.boot.boot_id if s.boot else "",
                s.boot.seconds if s.boot else 0.0,
            ]
            for row_id, s in newest
        },
    }
    _set_meta(conn, CONFLICT_STAMPS_META, json.dumps(doc))


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
