"""The kinds of input source, and for each one how it is built, selftested and given its device.

``[scanner] source`` lists :class:`SourceKind` members; the configuration accepts
no other word. :func:`spec` is the one registry: for every kind its builder
(``kiosk run``), its selftest, the ``source`` its events carry, and what it
needs from the system: the kiosk user's groups, the systemd ``DeviceAllow``
entries (``systemd/kiosk.service``; a test checks the unit grants them) and its
udev rules file. It is a ``match`` over the whole enum, so a new kind makes mypy
name it; nothing falls back to another kind.

A started source is a :class:`RunningSource`. Builders import their drivers
lazily: the configuration imports this module, and must not pull in pyserial,
evdev or the camera stack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, assert_never

from kiosk.errors import HardwareError

if TYPE_CHECKING:
    from kiosk.config import Config
    from kiosk.selftest.base import Drivers, PartResult

__all__ = [
    "SOURCE_KINDS",
    "RunningSource",
    "ScannerDriver",
    "SourceKind",
    "SourceSpec",
    "event_source",
    "spec",
]

SOURCE_STALL_S = 10.0

OnEvent = Callable[[Any], None]
Timed = Callable[[Any], Any]  # wraps the camera's decoder (decode-time metrics)


class SourceKind(StrEnum):
    """A configurable input source (``[scanner] source``)."""

    SERIAL = "serial"  # USB-serial or UART barcode scanner (pyserial)
    CAMERA = "camera"  # the Pi camera, decoded by kiosk.decode
    HID = "hid"  # keyboard-wedge scanner read through evdev
    STDIN = "stdin"  # codes typed into the terminal
    REPLAY = "replay"  # the camera pipeline fed from a folder of images


SOURCE_KINDS: tuple[SourceKind, ...] = tuple(SourceKind)


class RunningSource(Protocol):
    """A started source, owned by the service's source slot."""

    def health(self, now: float) -> str | None:
        """A fault the watchdog restarts the service for, or None."""
        ...

    def problem(self, now: float) -> str | None:
        """Why the source reads no codes right now (unplugged, no frames), or None."""
        ...

    def stop(self) -> None:
        """Stop reading and release the device."""
        ...


class ScannerDriver(Protocol):
    """A scanner driver that reopens its device by itself (serial, HID)."""

    @property
    def connected(self) -> bool:
        """True while the device is open."""
        ...

    def start(self) -> None: ...

    def stop(self, timeout: float = 2.0) -> bool: ...


@dataclass(frozen=True)
class SourceSpec:
    """Everything the kiosk knows about one :class:`SourceKind`."""

    events: str  # the ``source`` of the events it sends
    build: Callable[[Config, OnEvent, Timed], RunningSource]
    scanner_check: Callable[[Config, Drivers, PartResult], PartResult]
    frames_check: Callable[[Config, Drivers], PartResult] | None  # camera pipeline only
    groups: tuple[str, ...] = ()  # the kiosk user's groups for its device
    devices: tuple[str, ...] = ()  # systemd DeviceAllow entries for its device
    rules: str = ""  # udev rules under config/ giving it a stable name

    @property
    def camera(self) -> bool:
        """Fed through the camera pipeline (one camera line in the selftest)."""
        return self.frames_check is not None


_SCANNER_RULES = "99-kiosk-scanner.rules"
_SERIAL_DEVICES = (
    "/dev/kiosk-scanner",
    "char-ttyACM",
    "char-ttyUSB",
    "char-ttyAMA",
    "char-ttyS",
)
_CAMERA_DEVICES = ("char-video4linux", "char-media", "char-dma_heap")


def spec(kind: SourceKind) -> SourceSpec:
    """The registry entry of *kind*."""
    match kind:
        case SourceKind.SERIAL:
            return SourceSpec(
                "serial",
                _build_serial,
                _check_serial,
                None,
                ("dialout",),
                _SERIAL_DEVICES,
                _SCANNER_RULES,
            )
        case SourceKind.CAMERA:
            return SourceSpec(
                "camera", _build_camera, _camera_result, _check_camera, ("video",), _CAMERA_DEVICES
            )
        case SourceKind.HID:
            return SourceSpec(
                "hid", _build_hid, _check_hid, None, ("input",), ("char-input",), _SCANNER_RULES
            )
        case SourceKind.STDIN:
            return SourceSpec("stdin", _build_stdin, _check_stdin, None)
        case SourceKind.REPLAY:
            return SourceSpec("camera", _build_replay, _camera_result, _check_replay)
        case _:
            assert_never(kind)


def event_source(kind: SourceKind) -> str:
    """The ``source`` of the events a configured source sends (``replay`` sends ``camera``)."""
    return spec(kind).events


# --- running sources ---------------------------------------------------------------------------


class _Scanner:
    """A scanner that reopens its device by itself: a problem while it is not open."""

    def __init__(self, driver: ScannerDriver, device: str) -> None:
        self._driver, self._device = driver, device

    def health(self, now: float) -> str | None:
        return None  # it reconnects on its own; the watchdog has nothing to restart

    def problem(self, now: float) -> str | None:
        return None if self._driver.connected else f"{self._device} not connected (unplugged?)"

    def stop(self) -> None:
        self._driver.stop()


class _Stdin:
    def __init__(self, driver: Any) -> None:
        self._driver = driver

    def health(self, now: float) -> str | None:
        return None

    def problem(self, now: float) -> str | None:
        return None

    def stop(self) -> None:
        self._driver.stop()


class _Camera:
    """The camera reader and its frame source; stops the reader, then closes the camera."""

    def __init__(self, reader: Any, camera: Any) -> None:
        self._reader, self._camera = reader, camera

    def health(self, now: float) -> str | None:
        last = self._reader.last_frame_at
        if last is None or now - last > SOURCE_STALL_S:
            return "camera delivers no frames"
        return None

    def problem(self, now: float) -> str | None:
        return self.health(now)

    def stop(self) -> None:
        try:
            self._reader.stop(2.0)
        finally:
            self._camera.close()


# --- builders (kiosk run) ----------------------------------------------------------------------


def _build_serial(cfg: Config, on_event: OnEvent, timed: Timed) -> RunningSource:
    from hardware.serial_scanner import SerialScanner

    sc = cfg.scanner
    scanner = SerialScanner(sc.port, baud=sc.baud, line_timeout=sc.line_timeout, on_event=on_event)
    scanner.start()
    return _Scanner(scanner, sc.port)


def _build_hid(cfg: Config, on_event: OnEvent, timed: Timed) -> RunningSource:
    from hardware.hid_scanner import HidScanner

    sc = cfg.scanner
    hid = HidScanner(sc.hid_device, layout=sc.hid_layout, on_event=on_event)
    hid.start()
    return _Scanner(hid, sc.hid_device)


def _build_stdin(cfg: Config, on_event: OnEvent, timed: Timed) -> RunningSource:
    from hardware.scanners import StdinScanner

    stdin = StdinScanner(on_event=on_event)
    stdin.start()
    return _Stdin(stdin)


def _build_camera(cfg: Config, on_event: OnEvent, timed: Timed) -> RunningSource:
    from hardware.camera import PiCameraSource

    return _start_camera(cfg, PiCameraSource(cfg.camera), on_event, timed)


def _build_replay(cfg: Config, on_event: OnEvent, timed: Timed) -> RunningSource:
    from hardware.camera import ReplaySource

    try:
        camera = ReplaySource(Path(cfg.camera.replay_dir), fps=cfg.camera.fps, loop=True)
    except (OSError, ValueError) as exc:
        raise HardwareError(f"camera.replay_dir: {exc}") from exc
    return _start_camera(cfg, camera, on_event, timed)


def _start_camera(cfg: Config, camera: Any, on_event: OnEvent, timed: Timed) -> RunningSource:
    from hardware.camera import CameraReader
    from kiosk.decode import make_decoder

    try:
        decoder = timed(make_decoder(cfg.scanner.decoder))
        reader = CameraReader(camera, decoder, on_event, idle_threshold=cfg.camera.idle_threshold)
        reader.start()
    except BaseException:
        camera.close()
        raise
    return _Camera(reader, camera)


# --- selftest (kiosk selftest); the checks live in kiosk.selftest.devices -----------------------


def _check_serial(cfg: Config, d: Drivers, camera: PartResult) -> PartResult:
    from kiosk.selftest.devices import check_serial

    return check_serial(cfg, d)


def _check_hid(cfg: Config, d: Drivers, camera: PartResult) -> PartResult:
    from kiosk.selftest.devices import check_hid

    return check_hid(cfg, d)


def _check_stdin(cfg: Config, d: Drivers, camera: PartResult) -> PartResult:
    from kiosk.selftest.devices import check_stdin

    return check_stdin(cfg, d)


def _camera_result(cfg: Config, d: Drivers, camera: PartResult) -> PartResult:
    from kiosk.selftest.base import PartResult

    return PartResult("scanner", camera.status, f"camera decodes the codes: {camera.detail}")


def _check_camera(cfg: Config, d: Drivers) -> PartResult:
    from kiosk.selftest.devices import check_pi_camera

    return check_pi_camera(cfg, d)


def _check_replay(cfg: Config, d: Drivers) -> PartResult:
    from kiosk.selftest.devices import check_replay

    return check_replay(cfg)
