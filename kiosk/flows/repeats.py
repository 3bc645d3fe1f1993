"""Repeat suppression: the same code read again within a short window is ignored.

A scanner may send a code twice, and a camera sees a phone for as long as it
is held up; only the first read counts. Every sighting renews the window, so
a phone held still stays silent. Texts are kept as SHA-256 digests, and old
ones are forgotten, so the memory stays small whatever is shown.

The filter spans sources: a code the camera saw and then the scanner read is
one scan. Between two sources the longer of their two windows applies (a phone
taken from the camera to the scanner within the camera's 5 s is the same
showing, even though the scanner's own window is 3 s).
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
        self._seen: dict[bytes, tuple[float, str]] = {}  # digest -> (last read, its source)

    def is_repeat(self, scan: Scan) -> bool:
        """True when *scan* repeats a read of the same text within the window: its source's,
        or the longer of the two when the earlier read came from another source."""
        key = hashlib.sha256(scan.text.encode("utf-8", "surrogatepass")).digest()
        last = self._seen.get(key)
        self._seen[key] = (scan.at, scan.source)
        if len(self._seen) > MAX_REMEMBERED:
            cutoff = scan.at - FORGET_AFTER_S
            self._seen = {k: seen for k, seen in self._seen.items() if seen[0] >= cutoff}
        if last is None:
            return False
        last_at, last_source = last
        window = self._window(scan.source)
        if last_source != scan.source:
            window = max(window, self._window(last_source))
        return scan.at - last_at < window

    def _window(self, source: str) -> float:
        return self._windows.get(source, self._default)
