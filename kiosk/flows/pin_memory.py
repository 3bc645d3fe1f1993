"""The staff PIN lock-out kept across restarts: a power cycle must not reset it.

The wrong tries and the lock-out's end are written to the journal's meta table
(a durable commit) at every change. The end is a reading of the boot-time clock
(``CLOCK_BOOTTIME``, which no one can set back) tagged with the boot id: in the
same boot it says how long is left; after a reboot how long has passed cannot
be known (the wall clock can be set), so a lock-out starts again in full.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from kiosk.clock import BootClock

PIN_LOCK_META = "staff_pin_lock"


class MetaStore(Protocol):
    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class Restored:
    """The lock as this boot should take it: wrong tries and seconds still locked."""

    wrong: int
    locked_s: float | None


class PinMemory:
    """Reads and writes a :class:`~kiosk.flows.pin_entry.PinLock`'s state in *store*."""

    def __init__(self, store: MetaStore, boot: BootClock) -> None:
        self._store = store
        self._boot = boot

    def restore(self, lock_seconds: float) -> Restored:
        """The saved state; a lock-out from another boot (or unreadable) lasts *lock_seconds*."""
        try:
            doc = json.loads(self._store.get_meta(PIN_LOCK_META) or "{}")
            wrong = int(doc.get("wrong", 0))
            until = doc.get("until")
            boot_id = str(doc.get("boot_id", ""))
        except (ValueError, TypeError, AttributeError):
            return Restored(0, lock_seconds)  # a damaged record: lock rather than forget
        if until is None:
            return Restored(max(wrong, 0), None)
        now = self._boot()
        if now is None or now.boot_id != boot_id:
            return Restored(max(wrong, 0), lock_seconds)
        left = float(until) - now.seconds
        # a reading from the future of this boot's clock proves nothing: lock in full
        return Restored(max(wrong, 0), min(left, lock_seconds) if left >= 0 else lock_seconds)

    def save(self, wrong: int, locked_s: float | None) -> None:
        """Record *wrong* tries and a lock-out with *locked_s* seconds left (None: none)."""
        doc: dict[str, object] = {"wrong": wrong}
        now = self._boot()
        if locked_s is not None:
            doc["until"] = (now.seconds if now else 0.0) + locked_s
            doc["boot_id"] = now.boot_id if now else ""
        self._store.set_meta(PIN_LOCK_META, json.dumps(doc))
