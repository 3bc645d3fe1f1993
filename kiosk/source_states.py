"""Each input source's state, as ``kiosk run`` last saw it, for ``kiosk status``.

``kiosk status`` runs as a separate process and cannot ask the running
service's sources, so the service writes what it sees into the journal's
``meta`` table (key ``sources``) whenever a source comes or goes, and once
more, marked stopped, when it stops::

    {"running": true, "at": 1764480000.0,
     "sources": [{"name": "camera", "ok": true, "detail": ""},
                 {"name": "serial", "ok": false, "detail": "/dev/ttyACM0 not connected"}]}
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from kiosk.config import Config
from kiosk.errors import JournalError
from kiosk.journal import Journal

log = logging.getLogger("kiosk.sources")

SOURCES_META = "sources"


class SourceReport:
    """Writes the sources' states on change; owned by the thread that calls it."""

    def __init__(self, cfg: Config, *, clock: Callable[[], float] = time.time) -> None:
        self._path = cfg.journal.path
        self._clock = clock
        self._journal: Journal | None = None
        self._last: list[dict[str, Any]] | None = None

    def report(self, states: list[dict[str, Any]]) -> None:
        """Record *states* (``[{"name", "ok", "detail"}]``) if they changed. Never raises."""
        if states == self._last:
            return
        if self._write({"running": True, "at": self._clock(), "sources": states}):
            self._last = states

    def close(self) -> None:
        """Mark the sources as no longer watched (the service stops); safe to call twice."""
        if self._last is not None:
            self._write({"running": False, "at": self._clock(), "sources": self._last})
            self._last = None
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def _write(self, doc: dict[str, Any]) -> bool:
        try:
            if self._journal is None:
                self._journal = Journal.open(self._path, recover=False)
            self._journal.set_meta(SOURCES_META, json.dumps(doc))
        except JournalError as exc:
            log.warning("cannot record the sources' states for kiosk status: %s", exc)
            return False
        return True


def read_states(journal: Journal) -> dict[str, Any] | None:
    """What :class:`SourceReport` wrote last, or None (never written, or unreadable)."""
    text = journal.get_meta(SOURCES_META)
    if not text:
        return None
    try:
        doc = json.loads(text)
        sources = [
            {"name": str(s["name"]), "ok": bool(s["ok"]), "detail": str(s.get("detail", ""))}
            for s in doc["sources"]
        ]
        return {"running": bool(doc["running"]), "at": float(doc["at"]), "sources": sources}
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring the recorded sources' states: %s", exc)
        return None
