"""A journal looked at without changing it: a consistent copy, made with SQLite's backup API
from the file opened read-only, in a temporary folder beside it.

``kiosk selftest`` of a release that is not running yet (an update checks the new release
before switching to it) migrates and checks the copy, never the live journal: the live
file keeps the schema of the release that runs it, so a release that is then not switched
to, or is rolled back, leaves a journal its predecessor can open.
"""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import JournalError
from kiosk.journal.schema import SCHEMA_VERSION, translated
from kiosk.journal.store import Journal


@dataclass(frozen=True)
class Inspection:
    """What this release finds in a journal file, seen through a migrated copy."""

    version: int  # the live file's schema version (left as it is)
    pending: int  # requests waiting for the backend
    quarantined: int
    size_bytes: int

    @property
    def migrates(self) -> bool:
        """This release migrates the file's schema when it first opens it."""
        return self.version < SCHEMA_VERSION


def schema_version(path: Path) -> int:
    """``PRAGMA user_version`` of the journal at *path*, read without writing to it."""
    with translated():
        conn = _read_only(path)
        try:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()


def copy_to(path: Path, dest: Path) -> int:
    """Copy the journal at *path* into *dest* (one consistent snapshot, the write-ahead log
    included), opening *path* read-only; returns its schema version.

    Raises JournalCorrupt when *path* is not a database, JournalError otherwise.
    """
    with translated():
        src = _read_only(path)
        try:
            version = int(src.execute("PRAGMA user_version").fetchone()[0])
            dst = sqlite3.connect(str(dest))
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    return version


def inspect(path: Path) -> Inspection:
    """Open a copy of the journal at *path* as :meth:`Journal.open` would open the file
    (migration and ``quick_check`` included) and report on it; *path* is not changed.

    The copy lives in a temporary folder beside *path* (same disk, removed afterwards).
    Raises JournalCorrupt (damaged), JournalError (unreadable, a newer schema than this
    release, a folder that cannot be written).
    """
    size = path.stat().st_size
    try:
        tmp = tempfile.TemporaryDirectory(dir=path.parent, prefix=".kiosk-inspect-")
    except OSError as exc:
        raise JournalError(f"cannot write in {path.parent}: {exc.strerror}") from exc
    with tmp as folder:
        copy = Path(folder) / path.name
        version = copy_to(path, copy)
        with Journal.open(copy, recover=False) as journal:
            pending = journal.pending_count()
            quarantined = journal.quarantined_count()
    return Inspection(version, pending, quarantined, size)


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that never writes *path* nor makes files beside it. Without a
    write-ahead log (no kiosk has it open) the file is complete and read as immutable;
    a read-only connection would leave an empty log and index behind."""
    log = Path(f"{path}-wal")
    mode = "mode=ro" if log.exists() else "mode=ro&immutable=1"
    return sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True, timeout=5.0)
