"""The C library's few calls that Python does not offer: clock state and the heap (glibc).

One handle, opened once. ``ctypes.util.find_library`` runs ``ldconfig -p`` in a
child process, far too costly for something asked on every screen refresh, so
the handle is the process's own symbol table (``dlopen(NULL)``), which holds the
C library the interpreter was linked with.

Heap: glibc gives every thread that allocates its own arena (up to eight per
core), and freed memory stays in the arenas, counted in the process's RSS,
until it is trimmed. The kiosk's threads (engine, sync, readers, camera,
metrics, signals) allocate little and seldom at the same time, so
:func:`limit_malloc_arenas` caps the arenas, and :func:`return_freed_memory`
gives free pages back. Elsewhere (musl, macOS) both do nothing and say so.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from typing import Any

M_ARENA_MAX = -8  # mallopt parameter, <malloc.h>

# The arenas `kiosk run` allows: the main one and one more, shared by every other
# thread. Set before any thread starts (arenas made earlier are kept).
KIOSK_MALLOC_ARENAS = 2


@functools.cache
def libc() -> ctypes.CDLL | None:
    """The C library's symbols (errno kept for ctypes.get_errno); None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def limit_malloc_arenas(count: int = KIOSK_MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas at *count*; True when the C library took the setting."""
    mallopt = _function("mallopt", (ctypes.c_int, ctypes.c_int))
    return mallopt is not None and bool(mallopt(M_ARENA_MAX, count))


def return_freed_memory() -> bool:
    """Give free heap pages back to the system (glibc ``malloc_trim``); True if any were."""
    trim = _function("malloc_trim", (ctypes.c_size_t,))
    return trim is not None and bool(trim(0))


def _function(name: str, argtypes: tuple[type, ...]) -> Any:
    """The C library's function *name* taking *argtypes* and returning int; None if absent."""
    lib = libc()
    try:
        func = getattr(lib, name) if lib is not None else None
    except AttributeError:  # not glibc
        return None
    if func is not None:
        func.argtypes = argtypes
        func.restype = ctypes.c_int
    return func
