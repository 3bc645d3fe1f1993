"""Is the journal file intact? SQLite's ``PRAGMA quick_check``, at open and once a day.

A damaged index page can make a lookup miss rows without any error (a receipt
accepted earlier today would no longer be found), so the check runs on every
open (:func:`kiosk.journal.schema.connect`) and once a day in the running
service (the sync worker). ``quick_check`` reads every page and checks the
b-tree structure in about the time of a full read of the file; it skips the
slower comparison of each index against its table that ``integrity_check`` does.
"""

from __future__ import annotations

import sqlite3

from kiosk.errors import JournalCorrupt

CHECK_EVERY_S = 24 * 3600.0
MAX_PROBLEMS = 5


def quick_check(conn: sqlite3.Connection) -> list[str]:
    """The problems ``PRAGMA quick_check`` finds in *conn*'s database ([] when intact).

    The connection's page cache is released first, so the pages are read from
    the file rather than from memory. Raises sqlite3.Error as the pragma does
    (callers translate it).
    """
    conn.execute("PRAGMA shrink_memory")
    rows = conn.execute(f"PRAGMA quick_check({MAX_PROBLEMS})").fetchall()
    lines = [str(r[0]) for r in rows]
    return [] if lines == ["ok"] else lines


def require_intact(conn: sqlite3.Connection) -> None:
    """Raise JournalCorrupt, naming the first problem, unless *conn* passes quick_check."""
    problems = quick_check(conn)
    if problems:
        first = " ".join(problems[0].replace("*** in database main ***", "").split())
        raise JournalCorrupt(f"journal file is damaged (quick_check: {first[:160]})")
