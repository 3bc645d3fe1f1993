"""The C library's heap calls: the arena cap holds however many threads allocate."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import libc

ROOT = Path(__file__).resolve().parents[2]
GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# Six threads hold memory from malloc at once; glibc's own report (malloc_info) then
# says how many arenas (<heap nr=...>) the process has.
_ARENAS = """
import ctypes, os, sys, tempfile, threading
from kiosk.libc import libc, limit_malloc_arenas

if sys.argv[1] == "limit":
    assert limit_malloc_arenas()
barrier = threading.Barrier(7)
held = []

def work():
    held.append(bytearray(1 << 16))
    barrier.wait()
    barrier.wait()

threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads:
    t.start()
barrier.wait()
lib = libc()
lib.fopen.restype = ctypes.c_void_p
lib.fopen.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
lib.fclose.argtypes = (ctypes.c_void_p,)
lib.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
fd, path = tempfile.mkstemp()
os.close(fd)
report = lib.fopen(path.encode(), b"w")
lib.malloc_info(0, report)
lib.fclose(report)
print(open(path).read().count("<heap nr="))
os.unlink(path)
barrier.wait()
for t in threads:
    t.join()
"""


def _arenas(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _ARENAS, mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(out.stdout.strip())


@pytest.mark.skipif(not GLIBC, reason="malloc arenas are glibc's")
def test_the_cap_keeps_six_allocating_threads_in_the_allowed_arenas() -> None:
    assert _arenas("free") > libc.KIOSK_MALLOC_ARENAS  # without it, an arena per thread
    assert _arenas("limit") <= libc.KIOSK_MALLOC_ARENAS


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_freed_memory_can_be_given_back_any_number_of_times() -> None:
    assert isinstance(libc.return_freed_memory(), bool)
    assert isinstance(libc.return_freed_memory(), bool)


def test_the_library_is_opened_once() -> None:
    assert libc.libc() is libc.libc()


def test_elsewhere_both_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    class NotGlibc:  # a C library without mallopt or malloc_trim (musl)
        pass

    monkeypatch.setattr(libc, "libc", lambda: NotGlibc())
    assert libc.limit_malloc_arenas() is False
    assert libc.return_freed_memory() is False
    monkeypatch.setattr(libc, "libc", lambda: None)
    assert libc.limit_malloc_arenas() is False
    assert libc.return_freed_memory() is False
