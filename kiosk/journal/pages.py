"""Table rows read straight from the pages of an SQLite file, without its b-tree.

When an interior page of a table is damaged, SQLite cannot reach the leaf pages below
it, although they are intact. :func:`leaf_rows` reads every table leaf page of the
file (page type 13) and decodes its cells (rowid and record, overflow pages followed)
as the file format describes them (https://sqlite.org/fileformat2.html, sections 1.6,
2.1 and 2.3). It knows nothing of tables: a free page may still hold rows deleted long
ago, so the caller takes only the rowids that a table's own index still names.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

_LEAF_TABLE = 0x0D
_MAX_OVERFLOW = 10_000  # pages followed for one cell, at most

Value = int | float | str | bytes | None


def leaf_rows(path: Path) -> Iterator[tuple[int, tuple[Value, ...]]]:
    """(rowid, values) of every cell of every table leaf page of the file at *path*;
    a page or cell that cannot be decoded is skipped. Raises OSError."""
    data = path.read_bytes()
    if len(data) < 100 or not data.startswith(b"SQLite format 3\0"):
        return
    page_size = struct.unpack(">H", data[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return
    usable = page_size - data[20]
    for number in range(1, len(data) // page_size + 1):
        start = (number - 1) * page_size
        head = start + (100 if number == 1 else 0)
        if data[head] != _LEAF_TABLE:
            continue
        cells = struct.unpack(">H", data[head + 3 : head + 5])[0]
        for i in range(cells):
            try:
                at = start + struct.unpack(">H", data[head + 8 + 2 * i : head + 10 + 2 * i])[0]
                yield _cell(data, at, start, page_size, usable)
            except (IndexError, ValueError, struct.error, UnicodeDecodeError):
                continue


def _cell(
    data: bytes, at: int, page: int, page_size: int, usable: int
) -> tuple[int, tuple[Value, ...]]:
    if not page < at < page + page_size:
        raise ValueError("cell outside its page")
    size, at = _varint(data, at)
    rowid, at = _varint(data, at)
    if size > len(data):
        raise ValueError("payload larger than the file")
    if rowid >= 1 << 63:
        rowid -= 1 << 64
    limit = usable - 35
    if size <= limit:
        payload = data[at : at + size]
    else:
        least = (usable - 12) * 32 // 255 - 23
        inline = least + (size - least) % (usable - 4)
        if inline > limit:
            inline = least
        payload = data[at : at + inline] + _overflow(
            data, struct.unpack(">I", data[at + inline : at + inline + 4])[0],
            size - inline, page_size, usable,
        )  # fmt: skip
    if len(payload) != size:
        raise ValueError("short payload")
    return rowid, _record(payload)


def _overflow(data: bytes, number: int, left: int, page_size: int, usable: int) -> bytes:
    out = bytearray()
    for _ in range(_MAX_OVERFLOW):
        if left <= 0 or number == 0:
            break
        start = (number - 1) * page_size
        if start + usable > len(data):
            raise ValueError("overflow page beyond the file")
        number = struct.unpack(">I", data[start : start + 4])[0]
        take = min(left, usable - 4)
        out += data[start + 4 : start + 4 + take]
        left -= take
    return bytes(out)


def _record(payload: bytes) -> tuple[Value, ...]:
    header, at = _varint(payload, 0)
    if not 0 < header <= len(payload):
        raise ValueError("bad record header")
    types = []
    while at < header:
        serial, at = _varint(payload, at)
        types.append(serial)
    values: list[Value] = []
    body = header
    for serial in types:
        value, body = _value(payload, body, serial)
        values.append(value)
    if body != len(payload):
        raise ValueError("record length does not add up")
    return tuple(values)


_INT_SIZES = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8}


def _value(payload: bytes, at: int, serial: int) -> tuple[Value, int]:
    if serial == 0:
        return None, at
    if serial in _INT_SIZES:
        n = _INT_SIZES[serial]
        if at + n > len(payload):
            raise ValueError("integer beyond the record")
        return int.from_bytes(payload[at : at + n], "big", signed=True), at + n
    if serial == 7:
        return struct.unpack(">d", payload[at : at + 8])[0], at + 8
    if serial in (8, 9):
        return serial - 8, at
    if serial >= 12:
        n = (serial - 12) // 2
        if at + n > len(payload):
            raise ValueError("text or blob beyond the record")
        raw = payload[at : at + n]
        return (raw if serial % 2 == 0 else raw.decode("utf-8")), at + n
    raise ValueError(f"reserved serial type {serial}")


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = 0
    for i in range(9):
        byte = data[at + i]
        if i == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    raise ValueError("varint")  # pragma: no cover - the loop always returns
