"""Damage a real journal file the way a failing SD card does: one scrambled index page."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def scramble_index(path: Path, index: str = "outcomes_tx") -> int:
    """Zero the cell count in the root page of *index*; returns that page's number.

    The WAL is checkpointed into the main file first, so the page on disk is the
    current one. A lookup through the index then finds nothing, without an error;
    ``PRAGMA quick_check`` reports the page.
    """
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        row = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE type = 'index' AND name = ?", (index,)
        ).fetchone()
        assert row is not None, f"no index {index} in {path}"
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()
    root = int(row[0])
    with path.open("r+b") as f:
        f.seek((root - 1) * page_size)
        header = bytearray(f.read(8))
        assert header[0] == 0x0A, "the index root is not a leaf page: too many rows for this"
        header[3:5] = b"\0\0"  # number of cells on the page
        f.seek((root - 1) * page_size)
        f.write(header)
    return root


def scramble_table_page(path: Path, table: str = "requests", kind: str = "leaf") -> int:
    """Overwrite one page of *table* with garbage; returns its number. *kind* ``leaf``: the
    middle leaf page in b-tree order (its rows can no longer be read; the leaves before
    and after it still can); ``internal``: the root page, above intact leaves (SQLite
    can then read none of the table's rows).

    The WAL is checkpointed into the main file first. The table needs three leaf pages.
    """
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        leaves = [
            int(r[0])
            for r in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = ? ORDER BY path",
                (table, kind),
            )
        ]
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()
    assert len(leaves) >= (3 if kind == "leaf" else 1), f"{table}: {len(leaves)} {kind} pages"
    page = leaves[len(leaves) // 2] if kind == "leaf" else leaves[0]
    with path.open("r+b") as f:
        f.seek((page - 1) * page_size)
        f.write(bytes((7 * i + 13) % 256 for i in range(page_size)))
    return page
