"""The OLED panel: the only writer of pixels, plus the devices it can drive.

``Display`` takes a luma device (R1): an SSD1306 or SH1106 over I2C on the Pi,
the ``PngDevice`` twin that writes each frame to a folder, or luma's ``dummy``
in tests and headless runs. ``make_device`` builds one from ``[display]`` and
turns luma's I2C errors into :mod:`kiosk.errors` with what to do next.

Threads: one owner (the engine thread) calls ``show``/``dim``/``close``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from luma.core.device import dummy
from PIL import Image

from kiosk.config import DisplayConfig
from kiosk.errors import DeviceNotFound, DevicePermission, HardwareError

log = logging.getLogger(__name__)

DIM_CONTRAST = 8
PNG_KEEP = 200  # numbered frames kept in the png folder; older ones are removed

_I2C_HELP = (
    "enable I2C with `sudo raspi-config` (Interface Options > I2C) and reboot; "
    "check that /dev/i2c-{port} exists"
)
_PERMISSION_HELP = "add the kiosk user to the i2c group (`sudo adduser kiosk i2c`) and restart"
_ADDRESS_HELP = (
    "check the wiring (VCC, GND, SDA to GPIO2, SCL to GPIO3) and the address: "
    "run `i2cdetect -y {port}`; panels answer at 0x3C or 0x3D ([display] address)"
)


class Display:
    """Shows finished 128x64 frames on one luma device; dims it; leaves it on close.

    *device* belongs to the caller (R9): ``close`` stops further writes and, by
    default, keeps the last image on the panel (luma's exit hook will not blank
    it). Raises HardwareError when the panel stops answering, or after close.
    """

    def __init__(self, *, device: Any, contrast: int = 255, dim_contrast: int = DIM_CONTRAST):
        self._device = device
        self._contrast = contrast
        self._dim_contrast = dim_contrast
        self._last: Image.Image | None = None
        self._dimmed = False
        self._closed = False
        self.frames = 0  # frames actually sent to the device

    @property
    def size(self) -> tuple[int, int]:
        return (int(self._device.width), int(self._device.height))

    @property
    def last_image(self) -> Image.Image | None:
        """A copy of the last frame shown, or None before the first."""
        return self._last.copy() if self._last is not None else None

    @property
    def dimmed(self) -> bool:
        return self._dimmed

    @property
    def closed(self) -> bool:
        return self._closed

    def show(self, image: Image.Image) -> None:
        """Send *image* to the panel unless it equals the frame already shown.

        Raises ValueError for a wrong size, HardwareError if the panel fails or
        the display is closed.
        """
        self._check_open()
        if image.size != self.size:
            raise ValueError(
                f"frame is {image.size[0]}x{image.size[1]}, panel is {self.size[0]}x{self.size[1]}"
            )
        frame = image.convert(self._device.mode)
        if self._last is not None and frame.tobytes() == self._last.tobytes():
            return
        try:
            self._device.display(frame)
        except OSError as exc:
            raise HardwareError(f"display stopped answering: {exc}; check the wiring") from exc
        self._last = frame.copy()
        self.frames += 1

    def dim(self, dimmed: bool) -> None:
        """Lower the contrast (True) or restore it (False). Raises HardwareError."""
        self._check_open()
        if dimmed == self._dimmed:
            return
        try:
            self._device.contrast(self._dim_contrast if dimmed else self._contrast)
        except OSError as exc:
            raise HardwareError(f"display stopped answering: {exc}; check the wiring") from exc
        self._dimmed = dimmed

    def close(self, *, clear: bool = False) -> None:
        """Stop writing. Keeps the last image on the panel unless *clear*. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if clear:
                self._device.clear()
            self._device.persist = not clear
        except OSError as exc:
            log.warning("display: could not clear the panel on close: %s", exc)

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise HardwareError("display is closed")


def make_device(cfg: DisplayConfig, *, bus: Any = None) -> Any:
    """Build the luma device named by ``cfg.driver``.

    *bus* is an already open SMBus-like object to use instead of opening
    ``/dev/i2c-<cfg.i2c_port>`` (for tests and shared buses). Raises
    DeviceNotFound (no I2C bus, or nothing at the address), DevicePermission
    (not in the i2c group) or HardwareError, each saying what to do.
    """
    if cfg.driver == "none":
        return dummy(width=128, height=64, rotate=cfg.rotate, mode="1")
    if cfg.driver == "png":
        return PngDevice(Path(cfg.png_dir), rotate=cfg.rotate)
    if cfg.driver not in ("ssd1306", "sh1106"):
        raise HardwareError(
            f"unknown display driver {cfg.driver!r}; use ssd1306, sh1106, png or none"
        )
    return _i2c_panel(cfg, bus)


def _i2c_panel(cfg: DisplayConfig, bus: Any) -> Any:
    import luma.core.error
    from luma.core.interface.serial import i2c
    from luma.oled.device import sh1106, ssd1306

    port = cfg.i2c_port
    driver = ssd1306 if cfg.driver == "ssd1306" else sh1106
    try:
        serial = i2c(bus=bus, port=port, address=cfg.address)
    except luma.core.error.DevicePermissionError as exc:
        raise DevicePermission(f"I2C bus {port}: permission denied; {_PERMISSION_HELP}") from exc
    except luma.core.error.DeviceNotFoundError as exc:
        raise DeviceNotFound(f"I2C bus {port} not found; {_I2C_HELP.format(port=port)}") from exc
    except luma.core.error.Error as exc:
        raise HardwareError(f"I2C bus {port}: {exc}") from exc
    try:
        device = driver(serial, width=128, height=64, rotate=cfg.rotate)
        device.contrast(cfg.contrast)
    except luma.core.error.DeviceNotFoundError as exc:
        raise DeviceNotFound(
            f"no {cfg.driver} answers at address 0x{cfg.address:02X} on I2C bus {port}; "
            + _ADDRESS_HELP.format(port=port)
        ) from exc
    except (luma.core.error.Error, OSError) as exc:
        raise HardwareError(
            f"{cfg.driver} at 0x{cfg.address:02X}: {exc}; " + _ADDRESS_HELP.format(port=port)
        ) from exc
    return device


class PngDevice(dummy):
    """A luma device that writes every new frame as PNG into *folder*.

    Frames are ``frame-000001.png`` upward plus ``latest.png`` (replaced
    atomically); only the newest *keep* numbered frames stay. Raises
    HardwareError when the folder cannot be written.
    """

    def __init__(self, folder: Path, *, rotate: int = 0, keep: int = PNG_KEEP) -> None:
        super().__init__(width=128, height=64, rotate=rotate, mode="1")
        self.folder = Path(folder)
        self.keep = keep
        self.count = 0
        self.persist = True  # nothing to blank at exit
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for stale in self.folder.glob("frame-*.png"):  # frames of an earlier run
                stale.unlink()
        except OSError as exc:
            raise HardwareError(
                f"cannot create the screen folder {self.folder}: {exc}; "
                "set [display] png_dir to a writable folder"
            ) from exc

    def display(self, image: Image.Image) -> None:
        super().display(image)
        self.count += 1
        frame = self.image
        try:
            frame.save(self.folder / f"frame-{self.count:06d}.png")
            tmp = self.folder / "latest.png.tmp"
            frame.save(tmp, format="PNG")
            os.replace(tmp, self.folder / "latest.png")
            old = self.folder / f"frame-{self.count - self.keep:06d}.png"
            if self.count > self.keep:
                old.unlink(missing_ok=True)
        except OSError as exc:
            raise HardwareError(f"cannot write screen frames to {self.folder}: {exc}") from exc
