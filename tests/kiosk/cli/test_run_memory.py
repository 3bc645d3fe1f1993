"""`kiosk run` keeps its heap small: glibc's malloc arenas capped before any thread starts."""

from __future__ import annotations

import platform
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.libc import KIOSK_MALLOC_ARENAS
from refbackend import DEMO_VENUE, ReferenceBackend

WAIT_S = 20.0
HEAP_MAX = 64 << 20  # a glibc thread arena's heap: 64 MiB reserved, aligned to its size

Outcomes = Callable[[str, str, subprocess.Popen[bytes]], list[str]]


def thread_arenas(pid: int) -> int:
    """Arenas besides the main one: anonymous heaps of 64 MiB at 64 MiB-aligned addresses."""
    maps = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        start, end = (int(x, 16) for x in fields[0].split("-"))
        maps.append((start, end, fields[1], len(fields) > 5))
    count = 0
    for i, (start, end, perms, named) in enumerate(maps):
        if named or perms != "rw-p" or start % HEAP_MAX:
            continue
        if i + 1 < len(maps) and maps[i + 1][0] == end and maps[i + 1][2] == "---p":
            end = maps[i + 1][1]  # the reserved, not yet used rest of the heap
        count += end - start == HEAP_MAX
    return count


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="malloc arenas are glibc's",
)
def test_run_keeps_its_threads_in_the_capped_arenas(
    kiosk_toml: Callable[..., Path],
    refbackend: ReferenceBackend,
    kiosk_run: Callable[..., subprocess.Popen[bytes]],
    journal_outcomes: Outcomes,
) -> None:
    config = kiosk_toml(scanner={"source": "stdin"})
    journal_path = load_config(config).journal.path
    proc = kiosk_run(config)
    assert proc.stdin is not None
    for amount in (6500, 2500):  # the engine, sync and reader threads all allocate
        tx, token = refbackend.mint_receipt(DEMO_VENUE, amount)
        proc.stdin.write(token.encode() + b"\n")
        proc.stdin.flush()
        assert journal_outcomes(journal_path, tx, proc) == ["checked"]
    arenas = thread_arenas(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err.decode("utf-8", "replace")
    assert arenas <= KIOSK_MALLOC_ARENAS - 1
