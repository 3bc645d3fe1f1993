"""Opening the journal file, and what is done when it is damaged.

A journal that fails ``quick_check`` is first repaired in place: its indexes are
rebuilt (``REINDEX``), which mends a damaged index page without losing a row. When
that is not enough (a table page is damaged), every row that can still be read
(:mod:`kiosk.journal.salvage`) is carried into a fresh journal, the damaged file is
kept beside it (``<name>.corrupt-<time>``), and the fresh one takes its place: the
requests keep their Idempotency-Keys and bodies, so the pending ones are uploaded as
before. What was done, and how many rows were salvaged and lost, is logged and kept in
the journal (:data:`RECOVERY_META`) for ``kiosk status`` and the technician screen.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kiosk.errors import JournalCorrupt, JournalError
from kiosk.journal.integrity import quick_check
from kiosk.journal.salvage import (
    TableSalvage,
    columns,
    from_pages,
    quoted,
    read_table,
    table_columns,
)
from kiosk.journal.schema import connect, translated
from kiosk.journal.write_lock import WRITE_WAIT_S, committed, write_lock

log = logging.getLogger("kiosk.journal")

RECOVERY_META = "journal_recovery"
_TABLES = ("requests", "outcomes", "meta", "pruned_outcomes")


@dataclass(frozen=True)
class Recovery:
    """How a damaged journal was mended: ``reindexed`` in place, or ``salvaged`` into a
    fresh file (*aside* is the damaged one, kept)."""

    how: str
    at: float
    aside: str | None = None
    salvaged: dict[str, int] = field(default_factory=dict)  # rows carried over, per table
    lost: dict[str, int] = field(default_factory=dict)  # rows known but unreadable
    unknown: list[str] = field(default_factory=list)  # tables whose losses cannot be counted
    orphaned: int = 0  # scans kept whose upload request was lost (never reported)

    @property
    def rows_salvaged(self) -> int:
        return sum(self.salvaged.values())

    @property
    def rows_lost(self) -> int:
        return sum(self.lost.values())

    def summary(self) -> str:
        """One line for the log, ``kiosk status`` and the technician screen."""
        if self.how == "reindexed":
            return "damaged index rebuilt in place, no row lost"
        lost = f"{self.rows_lost} lost"
        if self.unknown:
            lost += f" (and an unknown number from {', '.join(self.unknown)})"
        text = f"{self.rows_salvaged} rows salvaged, {lost}; old file {self.aside}"
        if self.orphaned:
            text += f"; {self.orphaned} scan(s) lost their upload"
        return text

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Recovery | None:
        if not text:
            return None
        try:
            doc = json.loads(text)
            return cls(**doc)
        except (ValueError, TypeError):
            return None


def last_recovery(get_meta: Callable[[str], str | None]) -> Recovery | None:
    """The last mending of the journal, from its ``meta`` (None: never damaged)."""
    return Recovery.from_json(get_meta(RECOVERY_META))


def open_file(path: Path, *, recover: bool) -> tuple[sqlite3.Connection, Recovery | None]:
    """Open or create the journal at *path*; ``(connection, how a damaged file was mended)``.

    With *recover* false a damaged file raises JournalCorrupt and is left as it is.
    Raises JournalError when the file cannot be created (a read-only disk is named as
    such) or opened.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JournalError(f"cannot create {path.parent}: {exc.strerror}") from exc
    try:
        return connect(path), None
    except JournalCorrupt as exc:
        if not recover:
            raise
        log.error("%s; repairing it", exc)
        recovery = recover_file(path)
        conn = connect(path)
        with translated(), committed(conn, write_lock(path), WRITE_WAIT_S):
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                (RECOVERY_META, recovery.to_json()),
            )
        log.error("journal %s: %s", path, recovery.summary())
        return conn, recovery
    except JournalError as exc:
        if read_only(path.parent):
            raise JournalError(
                f"read-only disk: the journal in {path.parent} cannot be written;"
                " check the disk, then remount it read-write"
            ) from exc
        raise


def read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def recover_file(path: Path) -> Recovery:
    """Mend the damaged journal at *path* (nothing else may have it open): rebuild its
    indexes in place, or else salvage its rows into a fresh file that takes its place."""
    _fold_log(path)
    if _reindexed(path):
        return Recovery("reindexed", time.time())
    return _salvage(path)


def _fold_log(path: Path) -> None:
    """Copy the write-ahead log into the file, so that the file alone is the journal."""
    try:
        conn = sqlite3.connect(str(path), timeout=5.0)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        log.warning("journal log could not be folded in: %s", exc)


def _reindexed(path: Path) -> bool:
    """Rebuild every index; True when the file then passes the full integrity check."""
    try:
        conn = sqlite3.connect(str(path), timeout=5.0, isolation_level=None)
        try:
            conn.execute("REINDEX")
            if quick_check(conn):
                return False
            return conn.execute("PRAGMA integrity_check(1)").fetchone()[0] == "ok"
        finally:
            conn.close()
    except sqlite3.Error as exc:
        log.warning("journal could not be repaired in place: %s", exc)
        return False


def _salvage(path: Path) -> Recovery:
    fresh = path.with_name(f"{path.name}.salvage")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{fresh}{suffix}").unlink(missing_ok=True)
    unknown: list[str] = []
    found: dict[str, TableSalvage] = {}
    wanted: dict[str, list[str]] = {}
    shapes: dict[str, list[Any]] = {}
    new = connect(fresh)
    try:
        new.execute("PRAGMA foreign_keys=OFF")  # an outcome may outlive its lost request
        old = sqlite3.connect(str(path), timeout=5.0)
        try:
            for table in _TABLES:
                try:
                    shapes[table] = table_columns(old, table)
                    if not shapes[table]:  # an older schema without this table
                        continue
                    theirs = {c.name for c in shapes[table]}
                    wanted[table] = [c for c in columns(new, table) if c in theirs]
                    found[table] = read_table(old, table, wanted[table])
                except sqlite3.DatabaseError as exc:  # the schema itself cannot be read
                    log.error("journal table %s cannot be read at all: %s", table, exc)
                    unknown.append(table)
                    continue
                if found[table].unknown:
                    unknown.append(table)
        finally:
            old.close()
        try:
            from_pages(path, shapes, wanted, found)
        except OSError as exc:
            log.warning("journal pages could not be read: %s", exc)
        salvaged = {t: _insert(new, t, wanted[t], s.rows.values()) for t, s in found.items()}
        lost = {t: s.lost for t, s in found.items()}
        orphans = new.execute(
            "UPDATE outcomes SET request_id = NULL WHERE request_id IS NOT NULL"
            " AND request_id NOT IN (SELECT id FROM requests)"
        ).rowcount
        new.execute("PRAGMA journal_mode=DELETE")  # no log of its own left beside it
    finally:
        new.close()
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    _keep(path, aside)
    for suffix in ("-wal", "-shm"):  # the damaged file's: never to be replayed onto the new one
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.replace(fresh, path)
    _sync_dir(path.parent)
    return Recovery("salvaged", time.time(), aside.name, salvaged, lost, unknown, orphans)


def _insert(
    conn: sqlite3.Connection, table: str, cols: list[str], rows: Iterable[tuple[object, ...]]
) -> int:
    names = ", ".join(quoted(c) for c in cols)
    marks = ", ".join("?" for _ in cols)
    conn.execute("BEGIN IMMEDIATE")  # one commit for the table (one flush on the card)
    try:
        cur = conn.executemany(
            f"INSERT OR IGNORE INTO {quoted(table)} ({names}) VALUES ({marks})", rows
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return max(cur.rowcount, 0)


def _keep(path: Path, aside: Path) -> None:
    """Keep the damaged file as *aside* while *path* still names it (a crash now leaves
    the damaged journal where it was, to be mended again)."""
    try:
        os.link(path, aside)
    except OSError:
        shutil.copy2(path, aside)
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size:
        with contextlib.suppress(OSError):
            shutil.copy2(wal, Path(f"{aside}-wal"))


def _sync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
