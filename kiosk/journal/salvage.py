"""Rows read out of a damaged journal file, around the damage, with Python's sqlite3 alone.

A Raspberry Pi OS Lite card has no ``sqlite3`` shell (and so no ``.recover``), and
Python's SQLite has no page-level virtual table; what it can do is walk each table's
b-tree by rowid and step over the pages that cannot be read:

- a scan in rowid order runs until it meets a damaged page; a seek for the next rowids
  (doubling the step, then halving it back) finds where the b-tree can be read again,
  and the scan goes on from there;
- every index that can still be read names rowids of its table (index-only scans never
  touch the table's pages): each one not read yet is looked up on its own;
- a row the b-tree no longer reaches (a damaged interior page above intact leaves) is
  looked for in the file's leaf pages (:func:`from_pages`), but only under a rowid
  its table's index still names, and only when its values fit the table's columns: a
  free page's long-deleted row never comes back. What is still missing is lost.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.journal.pages import Value, leaf_rows

log = logging.getLogger("kiosk.journal")

_MIN_ROWID = -(2**63)
_MAX_STEP = 2**62
_MAX_TRIES = 100_000  # restarts of one table's scan (each after a damaged stretch)


@dataclass
class TableSalvage:
    """What was read out of one table."""

    rows: dict[int, tuple[object, ...]] = field(default_factory=dict)  # rowid -> values
    missing: set[int] = field(default_factory=set)  # rowids an index names, not read yet

    @property
    def lost(self) -> int:
        """Rows known (from an index) that could not be read."""
        return len(self.missing)

    damaged: bool = False  # some page of the table could not be read
    unknown: bool = False  # damage where no index could say how many rows were there


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def columns(conn: sqlite3.Connection, table: str, schema: str = "main") -> list[str]:
    return [str(r[1]) for r in conn.execute(f"PRAGMA {schema}.table_info({quoted(table)})")]


def read_table(conn: sqlite3.Connection, table: str, cols: list[str]) -> TableSalvage:
    """Every row of *table* (its *cols*) that can still be read. Raises sqlite3.Error only
    when the table cannot be named at all (its schema is unreadable)."""
    out = TableSalvage()
    select = ", ".join(quoted(c) for c in cols)
    scan = f"SELECT rowid, {select} FROM {quoted(table)} WHERE rowid > ? ORDER BY rowid"
    after, stuck_at, tries = _MIN_ROWID, None, 0
    while tries < _MAX_TRIES:
        tries += 1
        try:
            for row in conn.execute(scan, (after,)):
                out.rows[int(row[0])] = tuple(row[1:])
                after = int(row[0])
            break
        except sqlite3.DatabaseError:
            out.damaged = True
            if after == stuck_at:  # the b-tree seeks past it, but its next row is unreadable
                after += 1
                continue
            stuck_at = after
            resume = _readable_from(conn, table, after)
            if resume is None:
                break
            after = max(resume - 1, after)
    known = _indexed_rowids(conn, table)
    if known is None:
        out.unknown = out.damaged
        return out
    one = f"SELECT {select} FROM {quoted(table)} WHERE rowid = ?"
    for rowid in sorted(known - out.rows.keys()):
        try:
            found = conn.execute(one, (rowid,)).fetchone()
        except sqlite3.DatabaseError:
            found = None
        if found is None:
            out.missing.add(rowid)
        else:
            out.rows[rowid] = tuple(found)
    return out


def _seek_ok(conn: sqlite3.Connection, table: str, rowid: int) -> bool:
    """Whether the b-tree can be searched for the first row at or after *rowid*."""
    try:
        conn.execute(
            f"SELECT rowid FROM {quoted(table)} WHERE rowid >= ? ORDER BY rowid LIMIT 1",
            (rowid,),
        ).fetchone()
    except sqlite3.DatabaseError:
        return False
    return True


def _readable_from(conn: sqlite3.Connection, table: str, after: int) -> int | None:
    """The smallest rowid above *after* from which the table can be searched again
    (probes 1, 2, 4, ... rowids ahead, then halves back to the boundary), or None."""
    start = max(after, 0) + 1
    step, bad = 1, start - 1
    while True:
        probe = start + step - 1
        if step > _MAX_STEP:
            return None
        if _seek_ok(conn, table, probe):
            break
        bad, step = probe, step * 2
    good = probe
    while good - bad > 1:  # the boundary between a damaged page and a readable one
        mid = (bad + good) // 2
        if _seek_ok(conn, table, mid):
            good = mid
        else:
            bad = mid
    return good


def _indexed_rowids(conn: sqlite3.Connection, table: str) -> set[int] | None:
    """Rowids named by the table's readable indexes (index-only scans), or None."""
    known: set[int] | None = None
    for name in _index_names(conn, table):
        try:
            ids = {
                int(r[0])
                for r in conn.execute(
                    f"SELECT rowid FROM {quoted(table)} INDEXED BY {quoted(name)}"
                )
            }
        except sqlite3.DatabaseError:
            continue
        known = ids if known is None else known | ids
    return known


def _index_names(conn: sqlite3.Connection, table: str) -> Iterator[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,)
    ).fetchall()
    return (str(r[0]) for r in rows)


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # declared type, upper case
    not_null: bool
    default: object
    rowid: bool  # INTEGER PRIMARY KEY: the rowid, stored as NULL in the record


def table_columns(conn: sqlite3.Connection, table: str) -> list[_Column]:
    """The columns of *table* in *conn*'s schema, defaults evaluated."""
    out = []
    for _, name, kind, not_null, default, pk in conn.execute(
        f"PRAGMA main.table_info({quoted(table)})"
    ):
        value = None
        if default is not None:
            with contextlib.closing(sqlite3.connect(":memory:")) as scratch:
                value = scratch.execute(f"SELECT {default}").fetchone()[0]
        kind = str(kind).upper()
        out.append(_Column(str(name), kind, bool(not_null), value, pk == 1 and kind == "INTEGER"))
    return out


def from_pages(
    path: Path, shapes: dict[str, list[_Column]], wanted: dict[str, list[str]],
    found: dict[str, TableSalvage],
) -> int:  # fmt: skip
    """Fill in rows still *missing* from the leaf pages of the file at *path*; returns how
    many were found. *shapes*: each table's columns in the damaged file; *wanted*: the
    columns taken, in the order of ``found[table].rows``' tuples."""
    hunted = {t: s for t, s in found.items() if s.missing}
    if not hunted:
        return 0
    taken = 0
    for rowid, values in leaf_rows(path):
        owners = [t for t, s in hunted.items() if rowid in s.missing and _fits(shapes[t], values)]
        if len(owners) != 1:
            continue
        table = owners[0]
        named = {
            c.name: (rowid if c.rowid else values[i] if i < len(values) else c.default)
            for i, c in enumerate(shapes[table])
        }
        salvage = hunted[table]
        salvage.rows[rowid] = tuple(named[c] for c in wanted[table])
        salvage.missing.discard(rowid)
        taken += 1
    return taken


def _fits(columns: list[_Column], values: tuple[Value, ...]) -> bool:
    """Whether a record can be a row of a table with *columns* (a row written before a
    column was added has fewer values)."""
    if not 0 < len(values) <= len(columns):
        return False
    for column, value in zip(columns, values, strict=False):
        if value is None:
            if column.not_null and not column.rowid:
                return False
            continue
        if column.rowid:
            return False
        if "INT" in column.kind and not isinstance(value, int):
            return False
        if "TEXT" in column.kind and not isinstance(value, str):
            return False
        if "REAL" in column.kind and not isinstance(value, int | float):
            return False
    return True
