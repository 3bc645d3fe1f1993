"""Selftest checks of the devices: scanner, camera, display, LED, buzzer, buttons.

Each source kind's own check is here; :mod:`kiosk.selftest.sources` picks it by kind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.config import Config
from kiosk.selftest.base import (
    _GPIO_HELP,
    _NO_GPIO_LIB,
    FAIL,
    FLASH_S,
    FRAME_WAIT_S,
    PASS,
    SCANNER_WAIT_S,
    SKIP,
    Drivers,
    PartResult,
    existing_parent,
)
from kiosk.source_kinds import ScannerDriver, SourceKind


def check_stdin(cfg: Config, d: Drivers) -> PartResult:
    """Codes typed in: nothing to open (the script scanner stands in with the twins)."""
    if d.scanner_twin:
        return _check_script_scanner(SourceKind.STDIN)
    return PartResult("scanner", SKIP, "source stdin: codes are typed in; nothing to open")


def _probe(
    scanner: ScannerDriver, faults: list[Any], name: str, advice: Callable[[str], str]
) -> PartResult:
    """Start a reader, wait until it has the device open (or reported why not), stop it."""
    scanner.start()
    try:
        deadline = time.monotonic() + SCANNER_WAIT_S
        while time.monotonic() < deadline and not scanner.connected and not faults:
            time.sleep(0.02)
        connected = bool(scanner.connected)
    finally:
        scanner.stop()
    if connected:
        return PartResult("scanner", PASS, f"{name} opens")
    detail = next((f.detail for f in faults if getattr(f, "detail", "")), "does not open")
    return PartResult("scanner", FAIL, f"{name}: {detail}; {advice(detail)}")


def check_serial(cfg: Config, d: Drivers) -> PartResult:
    from hardware.serial_scanner import IN_USE, SerialScanner

    sc = cfg.scanner
    port = d.serial_port or sc.port
    faults: list[Any] = []
    scanner = SerialScanner(
        port, baud=sc.baud, line_timeout=sc.line_timeout, on_event=faults.append,
        serial_factory=d.serial_factory,
    )  # fmt: skip

    def advice(detail: str) -> str:
        if "dialout" in detail or "ermission" in detail:
            return "add the kiosk user to the dialout group (`sudo adduser kiosk dialout`)"
        if IN_USE in detail:
            return "stop the kiosk service while testing (`sudo systemctl stop kiosk`)"
        return (
            "plug the scanner in (USB) or set [scanner] port; `ls -l /dev/serial/by-id/` lists "
            "serial devices, config/99-kiosk-scanner.rules gives /dev/kiosk-scanner"
        )

    return _probe(scanner, faults, f"serial port {port} at {sc.baud} baud", advice)


def check_hid(cfg: Config, d: Drivers) -> PartResult:
    """The HID scanner opens (the script scanner stands in with the twins)."""
    if d.scanner_twin:
        return _check_script_scanner(SourceKind.HID)
    from hardware.hid_scanner import HidScanner

    sc = cfg.scanner
    faults: list[Any] = []
    scanner = HidScanner(
        sc.hid_device, layout=sc.hid_layout, on_event=faults.append, evdev_module=d.evdev_module
    )

    def advice(detail: str) -> str:
        if "input" in detail and "group" in detail:
            return "add the kiosk user to the input group (`sudo adduser kiosk input`)"
        return "plug the scanner in or set [scanner] hid_device (`ls -l /dev/input/by-id/`)"

    return _probe(scanner, faults, f"HID scanner {sc.hid_device}", advice)


def _check_script_scanner(source: str) -> PartResult:
    from hardware.scanners import ScriptScanner

    seen: list[Any] = []
    twin = ScriptScanner(seen.append)
    twin.start()
    twin.feed("selftest")
    twin.stop()
    if [getattr(e, "text", None) for e in seen] == ["selftest"]:
        return PartResult(
            "scanner", PASS, f"script scanner delivers codes (stands in for {source})"
        )
    return PartResult("scanner", FAIL, "the script scanner delivered nothing")


def check_pi_camera(cfg: Config, d: Drivers) -> PartResult:
    """The camera gives a frame."""
    source = d.camera(cfg.camera)
    try:
        frame = source.read(FRAME_WAIT_S)
    finally:
        source.close()
    if frame is None:
        return PartResult(
            "camera",
            FAIL,
            f"camera opened but gave no frame within {FRAME_WAIT_S:.0f} s; check the ribbon "
            "cable and try `rpicam-hello --list-cameras`",
        )
    h, w = frame.pixels.shape[:2]
    return PartResult("camera", PASS, f"camera opens and gives {w}x{h} frames")


def check_replay(cfg: Config) -> PartResult:
    """The replay folder gives a frame."""
    from hardware.camera import ReplaySource

    folder = cfg.camera.replay_dir
    try:
        replay = ReplaySource(Path(folder), fps=cfg.camera.fps)
    except (OSError, ValueError) as exc:
        return PartResult("camera", FAIL, f"replay folder {folder}: {exc}; set camera.replay_dir")
    try:
        frame = replay.read(FRAME_WAIT_S)
    finally:
        replay.close()
    if frame is None:
        return PartResult("camera", FAIL, f"replay folder {folder} gave no frame")
    h, w = frame.pixels.shape[:2]
    return PartResult("camera", PASS, f"replay folder {folder} gives {w}x{h} frames")


def check_display(cfg: Config, d: Drivers) -> PartResult:
    dc = cfg.display
    if dc.driver == "none":
        return PartResult("display", PASS, "no panel (driver none)")
    if dc.driver == "png":  # not opened: that would clear the frames of a running service
        folder = existing_parent(Path(dc.png_dir))
        if os.access(folder, os.W_OK):
            return PartResult("display", PASS, f"frames go as PNG to {dc.png_dir}")
        return PartResult(
            "display", FAIL, f"{folder} is not writable; set [display] png_dir to a kiosk folder"
        )
    device = d.display_device(dc)
    device.persist = True  # leave the panel lit when this process exits
    where = f"{dc.driver} answers at 0x{dc.address:02X} on I2C bus {dc.i2c_port}"
    return PartResult("display", PASS, f"{where} ({device.width}x{device.height})")


def _gpio(part: str, key: str, make: Callable[[Any], Any], d: Drivers) -> PartResult:
    """Create the gpiozero device(s) on the configured pins, exercise them, release them."""
    from gpiozero.exc import BadPinFactory

    try:
        detail = make(d.pin_factory)
    except BadPinFactory as exc:
        return PartResult(part, FAIL, f"{exc}; {_NO_GPIO_LIB}")
    except (ValueError, TypeError) as exc:
        return PartResult(part, FAIL, f"{exc}; check [signals] {key}")
    except Exception as exc:  # gpiozero's GPIOZeroError tree, lgpio errors, OSError
        return PartResult(part, FAIL, f"{exc}; " + _GPIO_HELP.format(key=key))
    return PartResult(part, PASS, detail)


def check_led(cfg: Config, d: Drivers) -> PartResult:
    s = cfg.signals
    if s.rgb_pins:

        def rgb(factory: Any) -> str:
            from gpiozero import RGBLED

            with RGBLED(*s.rgb_pins, pin_factory=factory) as led:
                led.color = (0.0, 1.0, 0.0)
                time.sleep(FLASH_S)
                led.off()
            return f"RGB LED on GPIO {', '.join(map(str, s.rgb_pins))} (flashed green)"

        return _gpio("led", "rgb_pins", rgb, d)
    if s.led_pin < 0:
        return PartResult("led", SKIP, "not fitted (led_pin = -1)")

    def single(factory: Any) -> str:
        from gpiozero import LED

        with LED(s.led_pin, pin_factory=factory) as led:
            led.on()
            time.sleep(FLASH_S)
            led.off()
        return f"LED on GPIO {s.led_pin} (flashed)"

    return _gpio("led", "led_pin", single, d)


def check_buzzer(cfg: Config, d: Drivers) -> PartResult:
    s = cfg.signals
    if s.buzzer_pin < 0:
        return PartResult("buzzer", SKIP, "not fitted (buzzer_pin = -1)")

    def beep(factory: Any) -> str:
        from gpiozero import Buzzer, TonalBuzzer

        if s.buzzer_kind == "passive":
            with TonalBuzzer(s.buzzer_pin, pin_factory=factory) as tonal:
                tonal.play(tonal.mid_tone)
                time.sleep(FLASH_S)
                tonal.stop()
        else:
            with Buzzer(s.buzzer_pin, pin_factory=factory) as buzzer:
                buzzer.on()
                time.sleep(FLASH_S)
                buzzer.off()
        return f"{s.buzzer_kind} buzzer on GPIO {s.buzzer_pin} (beeped)"

    return _gpio("buzzer", "buzzer_pin", beep, d)


def check_buttons(cfg: Config, d: Drivers) -> PartResult:
    s = cfg.signals
    pins = {"up": s.button_up, "down": s.button_down, "ok": s.button_ok}
    fitted = {name: pin for name, pin in pins.items() if pin >= 0}
    if not fitted:
        return PartResult("buttons", SKIP, "not fitted (serial-only setup)")

    def claim(factory: Any) -> str:
        from gpiozero import Button

        held = []
        try:
            for pin in fitted.values():
                held.append(Button(pin, pin_factory=factory))
            pressed = [n for n, b in zip(fitted, held, strict=True) if b.is_pressed]
        finally:
            for button in held:
                button.close()
        text = ", ".join(f"{n} GPIO {p}" for n, p in fitted.items())
        stuck = f"; held down now: {', '.join(pressed)}" if pressed else ""
        return f"{text}{stuck}"

    return _gpio("buttons", "button_up/button_down/button_ok", claim, d)


# --- backend, clock, journal, disk -------------------------------------------------------------
