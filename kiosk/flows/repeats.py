"""Repeat suppression: the same code read again within a short window is ignored.

A scanner may send a code twice, and a camera sees a phone for as long as it
is held up; only the first read counts. Every sighting renews the window, so
a phone held still stays silent. Texts are kept as SHA-256 digests, and old
ones are forgotten, so the memory stays small whatever is shown.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from kiosk.events import Scan

FORGET_AFTER_S = 60.0
MAX_REMEMBERED = 256


class RepeatFilter:
    """Engine thread only."""

    def __init__(self, windows: Mapping[str, float], default_window: float) -> None:
        self._windows = dict(windows)
        self._default = default_window
        self._seen: dict[bytes, float] = {}

    def is_repeat(self, scan: Scan) -> bool:
        """True when *scan* repeats a read of the same text within its source's window."""
        window = self._windows.get(scan.source, self._default)
        key = hashlib.sha256(scan.text.encode("utf-8", "surrogatepass")).digest()
        last = self._seen.get(key)
        self._seen[key] = scan.at
        if len(self._seen) > MAX_REMEMBERED:
            cutoff = scan.at - FORGET_AFTER_S
            self._seen = {k: at for k, at in self._seen.items() if at >= cutoff}
        return last is not None and scan.at - last < window
