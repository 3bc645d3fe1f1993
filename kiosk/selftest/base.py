"""Results, parts and the drivers the selftest checks run against."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.config import Config

if TYPE_CHECKING:
    from kiosk.backend.client import BackendClient


PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
PARTS = (
    "scanner",
    "camera",
    "display",
    "led",
    "buzzer",
    "buttons",
    "backend",
    "auth",
    "jwks",
    "clock",
    "journal",
    "disk",
)
SCANNER_WAIT_S = 2.0
FRAME_WAIT_S = 3.0
FLASH_S = 0.2

_GPIO_HELP = (
    "check the BCM pin number in [signals] {key}, stop the kiosk service while testing "
    "(`sudo systemctl stop kiosk`: it holds the pins) and add the kiosk user to the gpio "
    "group (`sudo adduser kiosk gpio`)"
)
_NO_GPIO_LIB = (
    "no GPIO library found: on Raspberry Pi OS install python3-lgpio and create the venv "
    "with --system-site-packages"
)


@dataclass(frozen=True)
class PartResult:
    """One line of the report: *status* is PASS, FAIL or SKIP; *detail* says what was seen."""

    part: str
    status: str
    detail: str

    def line(self) -> str:
        return f"{self.status}  {self.part:<8} {self.detail}"

    def as_dict(self) -> dict[str, str]:
        return {"part": self.part, "status": self.status, "detail": self.detail}


def _default_client(cfg: Config) -> BackendClient:
    from kiosk.backend.client import BackendClient

    return BackendClient.from_config(cfg)


def _default_display(cfg: Any) -> Any:
    from hardware.display import make_device

    return make_device(cfg)


def _default_camera(cfg: Any) -> Any:
    from hardware.camera import PiCameraSource

    return PiCameraSource(cfg)


def _free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


@dataclass
class Drivers:
    """The lower layers the checks open; the defaults are the real devices (R1).

    - *serial_port*: a pyserial URL used instead of ``[scanner] port`` (``loop://``).
    - *scanner_twin*: check the script scanner instead of a HID or stdin source.
    - *camera*: ``CameraConfig -> FrameSource``.
    - *display_device*: ``DisplayConfig -> luma device``.
    - *pin_factory*: a gpiozero pin factory (None: gpiozero's default).
    - *evdev_module*: evdev or a stand-in, for the HID scanner.
    """

    serial_port: str | None = None
    serial_factory: Callable[..., Any] | None = None
    scanner_twin: bool = False
    camera: Callable[[Any], Any] = _default_camera
    display_device: Callable[[Any], Any] = _default_display
    pin_factory: Any = None
    evdev_module: Any = None
    client_factory: Callable[[Config], BackendClient] = _default_client
    clock_synced: Callable[[], bool] = field(default=lambda: _kernel_clock_synced())
    free_bytes: Callable[[Path], int] = _free_bytes
    part_timeout: float = 15.0
    simulated: bool = False


def _kernel_clock_synced() -> bool:
    from kiosk.clock import kernel_clock_synced

    return kernel_clock_synced()


def simulated(**overrides: Any) -> Drivers:
    """Drivers for ``--simulate``: the hardware twins; backend, clock, journal, disk real."""
    import numpy as np

    from hardware.camera import ReplaySource
    from kiosk.rig import display_device, pin_factory

    def camera(cfg: Any) -> Any:
        return ReplaySource([np.full((cfg.height, cfg.width), 128, dtype=np.uint8)])

    values: dict[str, Any] = {
        "serial_port": "loop://",
        "scanner_twin": True,
        "camera": camera,
        "display_device": lambda cfg: display_device(cfg.rotate),
        "pin_factory": pin_factory(),
        "simulated": True,
    }
    values.update(overrides)
    return Drivers(**values)


# --- the report --------------------------------------------------------------------------------


def existing_parent(path: Path) -> Path:
    """*path* or its nearest existing parent."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
