"""The kinds of input source, and what each needs from the system.

``[scanner] source`` lists :class:`SourceKind` members; the configuration accepts
no other word. :func:`needs` says, for every kind, the ``source`` its events
carry, whether it is fed through the camera pipeline, and what it needs from the
system: the kiosk user's groups, the systemd ``DeviceAllow`` entries
(``systemd/kiosk.service``; a test checks the unit grants them) and its udev
rules file. How each kind is built and selftested is :func:`kiosk.sources.spec`.
Both are a ``match`` over the whole enum, so a new kind makes mypy name them.

A leaf module: the configuration, the counter and the selftest import it
without pulling in any driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, assert_never

__all__ = [
    "SOURCE_KINDS",
    "ScannerDriver",
    "SourceKind",
    "SourceNeeds",
    "event_source",
    "needs",
]


class SourceKind(StrEnum):
    """A configurable input source (``[scanner] source``)."""

    SERIAL = "serial"  # USB-serial or UART barcode scanner (pyserial)
    CAMERA = "camera"  # the Pi camera, decoded by kiosk.decode
    HID = "hid"  # keyboard-wedge scanner read through evdev
    STDIN = "stdin"  # codes typed into the terminal
    REPLAY = "replay"  # the camera pipeline fed from a folder of images


SOURCE_KINDS: tuple[SourceKind, ...] = tuple(SourceKind)


@dataclass(frozen=True)
class SourceNeeds:
    """What one :class:`SourceKind` is and needs from the system."""

    events: str  # the ``source`` of the events it sends
    camera: bool = False  # fed through the camera pipeline (one camera line in the selftest)
    groups: tuple[str, ...] = ()  # the kiosk user's groups for its device
    devices: tuple[str, ...] = ()  # systemd DeviceAllow entries for its device
    rules: str = ""  # udev rules under config/ giving it a stable name


class ScannerDriver(Protocol):
    """A scanner driver that reopens its device by itself (serial, HID)."""

    @property
    def connected(self) -> bool:
        """True while the device is open."""
        ...

    def start(self) -> None: ...

    def stop(self, timeout: float = 2.0) -> bool: ...


_SCANNER_RULES = "99-kiosk-scanner.rules"
_SERIAL_DEVICES = ("/dev/kiosk-scanner", "char-ttyACM", "char-ttyUSB", "char-ttyAMA", "char-ttyS")
_CAMERA_DEVICES = ("char-video4linux", "char-media", "char-dma_heap")


def needs(kind: SourceKind) -> SourceNeeds:
    """What *kind* is and needs."""
    match kind:
        case SourceKind.SERIAL:
            return SourceNeeds("serial", False, ("dialout",), _SERIAL_DEVICES, _SCANNER_RULES)
        case SourceKind.CAMERA:
            return SourceNeeds("camera", True, ("video",), _CAMERA_DEVICES)
        case SourceKind.HID:
            return SourceNeeds("hid", False, ("input",), ("char-input",), _SCANNER_RULES)
        case SourceKind.STDIN:
            return SourceNeeds("stdin")
        case SourceKind.REPLAY:
            return SourceNeeds("camera", True)
        case _:
            assert_never(kind)


def event_source(kind: SourceKind) -> str:
    """The ``source`` of the events a configured source sends (``replay`` sends ``camera``)."""
    return needs(kind).events
