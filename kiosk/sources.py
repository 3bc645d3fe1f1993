"""How each input source is built (``kiosk run``) and selftested (``kiosk selftest``).

:func:`spec` is the registry of :class:`~kiosk.source_kinds.SourceKind`: for every
kind its builder, its selftest and its :func:`~kiosk.source_kinds.needs`. It is a
``match`` over the whole enum, so a new kind makes mypy name it; nothing falls
back to another kind. A started source is a :class:`RunningSource`.

A composition root: builders import their drivers (pyserial, evdev, the camera
stack) lazily, and only ``kiosk.service`` and ``kiosk.selftest`` import this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, assert_never

from kiosk.errors import HardwareError
from kiosk.source_kinds import ScannerDriver, SourceKind, SourceNeeds, needs

if TYPE_CHECKING:
    from hardware.camera import CameraReader, FrameSource
    from hardware.scanners import StdinScanner
    from kiosk.config import Config
    from kiosk.events import Event
    from kiosk.selftest.base import Drivers, PartResult

__all__ = ["RunningSource", "SourceSpec", "spec"]

SOURCE_STALL_S = 10.0

OnEvent = Callable[["Event"], None]
Timed = Callable[[Any], Any]  # wraps the camera's decoder (decode-time metrics)


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


@dataclass(frozen=True)
class SourceSpec:
    """How one :class:`SourceKind` is built and selftested, and what it needs."""

    needs: SourceNeeds
    build: Callable[[Config, OnEvent, Timed], RunningSource]
    scanner_check: Callable[[Config, Drivers, PartResult], PartResult]
    frames_check: Callable[[Config, Drivers], PartResult] | None = None  # camera pipeline only


def spec(kind: SourceKind) -> SourceSpec:
    """The registry entry of *kind*."""
    match kind:
        case SourceKind.SERIAL:
            return SourceSpec(needs(kind), _build_serial, _check_serial)
        case SourceKind.CAMERA:
            return SourceSpec(needs(kind), _build_camera, _camera_result, _check_camera)
        case SourceKind.HID:
            return SourceSpec(needs(kind), _build_hid, _check_hid)
        case SourceKind.STDIN:
            return SourceSpec(needs(kind), _build_stdin, _check_stdin)
        case SourceKind.REPLAY:
            return SourceSpec(needs(kind), _build_replay, _camera_result, _check_replay)
        case _:
            assert_never(kind)


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
    def __init__(self, driver: StdinScanner) -> None:
        self._driver = driver

    def health(self, now: float) -> str | None:
        return None

    def problem(self, now: float) -> str | None:
        return None

    def stop(self) -> None:
        self._driver.stop()


class _Camera:
    """The camera reader and its frame source; stops the reader, then closes the camera."""

    def __init__(self, reader: CameraReader, camera: FrameSource) -> None:
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


def _start_camera(
    cfg: Config, camera: FrameSource, on_event: OnEvent, timed: Timed
) -> RunningSource:
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
