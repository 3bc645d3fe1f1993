"""The kiosk's local journal: :class:`Journal` (:mod:`kiosk.journal.store`) over the
SQLite schema and row types of :mod:`kiosk.journal.schema`."""

from kiosk.journal.schema import SCHEMA_VERSION, OutcomeRow, Request
from kiosk.journal.store import Journal

__all__ = ["SCHEMA_VERSION", "Journal", "OutcomeRow", "Request"]
