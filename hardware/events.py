"""Former home of the input events; they live in :mod:`kiosk.events` now."""

from kiosk.events import Event, Press, Scan, ScanFault

__all__ = ["Event", "Press", "Scan", "ScanFault"]
