"""Former home of the input events; they live in :mod:`kiosk.events` now."""

from kiosk.events import SOURCES, Event, Press, Scan, ScanFault

__all__ = ["SOURCES", "Event", "Press", "Scan", "ScanFault"]
