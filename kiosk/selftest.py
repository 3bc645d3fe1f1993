"""``kiosk selftest``: one PASS / FAIL / SKIP line per part, each FAIL saying what to do next.

Parts, in order: scanner, camera, display, LED, buzzer, buttons, backend
(reachability), auth (client id, secret and venue), JWKS, clock, journal,
disk. ``SKIP`` is a part that is not fitted (a pin of -1, no camera when the
scanner is serial) or a backend step that could not be reached.

Every lower layer comes from :class:`Drivers` (R1): the defaults open the real
devices named by the configuration; :func:`simulated` gives the twins (luma
``dummy`` display, gpiozero ``MockFactory`` pins, a ``loop://`` serial port,
the script scanner, a replayed camera frame). The backend, clock, journal and
disk checks always run for real, also with ``--simulate``.

Each check runs on its own short-lived thread and is given up after
``Drivers.part_timeout`` seconds, so a hung camera or bus never hangs the tool.
A check may briefly light the LED, sound the buzzer and re-initialise the panel.
While ``kiosk run`` holds the camera or the pins, those checks fail with a hint
to stop the service first; the journal check only writes one ``meta`` row.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.config import Config
from kiosk.errors import (
    BackendAuthError,
    BackendError,
    BackendUnreachable,
    JournalCorrupt,
    JournalError,
    KioskError,
)

if TYPE_CHECKING:
    from kiosk.backend_client import BackendClient

__all__ = [
    "FAIL",
    "PARTS",
    "PASS",
    "SKIP",
    "Drivers",
    "PartResult",
    "run_selftest",
    "simulated",
    "summary",
]

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
SELFTEST_META = "selftest_at"
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
    from kiosk.backend_client import BackendClient

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
    from gpiozero.pins.mock import MockFactory, MockPWMPin
    from luma.core.device import dummy

    from hardware.camera import ReplaySource

    def camera(cfg: Any) -> Any:
        return ReplaySource([np.full((cfg.height, cfg.width), 128, dtype=np.uint8)])

    values: dict[str, Any] = {
        "serial_port": "loop://",
        "scanner_twin": True,
        "camera": camera,
        "display_device": lambda cfg: dummy(width=128, height=64, rotate=cfg.rotate, mode="1"),
        "pin_factory": MockFactory(pin_class=MockPWMPin),
        "simulated": True,
    }
    values.update(overrides)
    return Drivers(**values)


# --- the report --------------------------------------------------------------------------------


def run_selftest(cfg: Config, drivers: Drivers | None = None) -> list[PartResult]:
    """Check every part in :data:`PARTS` order. Never raises for a failing part."""
    d = drivers or Drivers()
    with warnings.catch_warnings():
        # gpiozero warns once per pin library it could not load; the report says it better.
        warnings.simplefilter("ignore")
        results = _hardware(cfg, d)
    if d.simulated:
        results = [
            PartResult(r.part, r.status, f"{r.detail} [simulated]") if r.status == PASS else r
            for r in results
        ]
    backend = ("backend", "auth", "jwks")
    results.extend(_bounded_many(backend, lambda: check_backend(cfg, d), d.part_timeout))
    results.append(_bounded("clock", lambda: check_clock(d), d.part_timeout))
    results.append(_bounded("journal", lambda: check_journal(cfg), d.part_timeout))
    results.append(_bounded("disk", lambda: check_disk(cfg, d), d.part_timeout))
    return results


def _hardware(cfg: Config, d: Drivers) -> list[PartResult]:
    results: list[PartResult] = []
    camera = _bounded("camera", lambda: check_camera(cfg, d), d.part_timeout)
    results.append(_bounded("scanner", lambda: check_scanner(cfg, d, camera), d.part_timeout))
    results.append(camera)
    checks: tuple[tuple[str, Callable[[Config, Drivers], PartResult]], ...] = (
        ("display", check_display),
        ("led", check_led),
        ("buzzer", check_buzzer),
        ("buttons", check_buttons),
    )
    for part, check in checks:
        results.append(_bounded(part, partial(check, cfg, d), d.part_timeout))
    return results


def summary(results: list[PartResult]) -> str:
    counts = {s: sum(1 for r in results if r.status == s) for s in (PASS, FAIL, SKIP)}
    return f"selftest: {counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} skipped"


def _bounded(part: str, check: Callable[[], PartResult], timeout: float) -> PartResult:
    return _bounded_many((part,), lambda: [check()], timeout)[0]


def _bounded_many(
    parts: tuple[str, ...], check: Callable[[], list[PartResult]], timeout: float
) -> list[PartResult]:
    """Run *check* on a helper thread for at most *timeout* seconds; never raises."""
    box: list[list[PartResult]] = []

    def run() -> None:
        try:
            box.append(check())
        except KioskError as exc:
            box.append([PartResult(p, FAIL, str(exc)) for p in parts])
        except Exception as exc:  # a driver failing in a way nobody foresaw: still one line
            text = f"unexpected {type(exc).__name__}: {exc}"
            box.append([PartResult(p, FAIL, text) for p in parts])

    thread = threading.Thread(target=run, name=f"selftest-{parts[0]}", daemon=True)
    thread.start()
    thread.join(timeout)
    if not box:
        hung = f"no answer within {timeout:.0f} s; the device or the network hangs"
        return [PartResult(p, FAIL, f"{hung}: check the cables and backend.url") for p in parts]
    return box[0]


# --- hardware ----------------------------------------------------------------------------------


def check_scanner(cfg: Config, d: Drivers, camera: PartResult) -> PartResult:
    sc = cfg.scanner
    if sc.source == "camera":
        return PartResult("scanner", camera.status, f"camera decodes the codes: {camera.detail}")
    if sc.source == "serial":
        return _check_serial(cfg, d)
    if d.scanner_twin:
        return _check_script_scanner(sc.source)
    if sc.source == "stdin":
        return PartResult("scanner", SKIP, "source stdin: codes are typed in; nothing to open")
    return _check_hid(cfg, d)


def _probe(scanner: Any, faults: list[Any], name: str, advice: Callable[[str], str]) -> PartResult:
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


def _check_serial(cfg: Config, d: Drivers) -> PartResult:
    from hardware.serial_scanner import SerialScanner

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
        return (
            "plug the scanner in (USB) or set [scanner] port; `ls -l /dev/serial/by-id/` lists "
            "serial devices, config/99-kiosk-scanner.rules gives /dev/kiosk-scanner"
        )

    return _probe(scanner, faults, f"serial port {port} at {sc.baud} baud", advice)


def _check_hid(cfg: Config, d: Drivers) -> PartResult:
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


def check_camera(cfg: Config, d: Drivers) -> PartResult:
    if cfg.scanner.source != "camera":
        return PartResult("camera", SKIP, f"not used ([scanner] source = {cfg.scanner.source})")
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


def check_display(cfg: Config, d: Drivers) -> PartResult:
    dc = cfg.display
    if dc.driver == "none":
        return PartResult("display", PASS, "no panel (driver none)")
    if dc.driver == "png":  # not opened: that would clear the frames of a running service
        folder = _existing(Path(dc.png_dir))
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


def check_backend(cfg: Config, d: Drivers) -> list[PartResult]:
    """Reachability, then the kiosk's credentials and venue, then the key set."""
    from kiosk.tokens import KeySet

    url = cfg.backend.url
    with d.client_factory(cfg) as client:
        try:
            document = client.fetch_jwks()
        except BackendUnreachable as exc:
            reach = PartResult(
                "backend",
                FAIL,
                f"{url} not reachable ({exc}); check the network (Wi-Fi, cable), backend.url "
                "and any firewall; the counter keeps working offline within [offline] limits",
            )
            skipped = "not checked: the backend is not reachable"
            return [reach, PartResult("auth", SKIP, skipped), PartResult("jwks", SKIP, skipped)]
        except BackendError as exc:
            reach = PartResult("backend", PASS, f"{url} answers")
            jwks = PartResult(
                "jwks",
                FAIL,
                f"{exc}; backend.url must be the payment backend serving "
                "/.well-known/jwks.json with Ed25519 keys",
            )
        else:
            reach = PartResult("backend", PASS, f"{url} answers")
            jwks = PartResult("jwks", PASS, f"{len(KeySet.from_jwks(document))} signing key(s)")
        return [reach, _check_auth(cfg, client), jwks]


def _check_auth(cfg: Config, client: BackendClient) -> PartResult:
    venue = cfg.device.venue
    try:
        info = client.get_venue(venue)
    except BackendAuthError as exc:
        return PartResult(
            "auth",
            FAIL,
            f"{exc} (client {cfg.backend.client_id!r}, venue {venue}); check backend.client_id, "
            "the secret in backend.client_secret_file and device.venue",
        )
    except BackendError as exc:
        return PartResult("auth", FAIL, f"{exc}; try again, then check backend.url")
    detail = f"client {cfg.backend.client_id!r} may use {venue} ({info.name}), "
    detail += f"{len(info.services)} service(s)"
    default = cfg.device.default_service
    if default and default not in {s.id for s in info.services}:
        return PartResult(
            "auth", FAIL, f"{detail}; device.default_service {default!r} is not one of them"
        )
    return PartResult("auth", PASS, detail)


def check_clock(d: Drivers) -> PartResult:
    if d.clock_synced():
        return PartResult("clock", PASS, "synchronised (NTP)")
    return PartResult(
        "clock",
        FAIL,
        "not synchronised: payment-code expiry is left to the backend; enable time sync with "
        "`sudo timedatectl set-ntp true` and check `timedatectl status` (needs the network)",
    )


_JOURNAL_HELP = (
    "the folder must exist and belong to the kiosk user (systemd StateDirectory=kiosk); "
    "run the selftest as that user: `sudo -u kiosk kiosk selftest`"
)


def check_journal(cfg: Config) -> PartResult:
    """Write one meta row into the journal; a journal not yet created is probed with a temp file.

    The file is never moved aside here (a damaged journal is reported, and
    ``kiosk run`` moves it aside on start), and never created, so running the
    selftest as root cannot leave a journal the service may not write.
    """
    from kiosk.journal import Journal

    path = Path(cfg.journal.path)
    if not path.exists():
        folder = _existing(path.parent)
        if folder != path.parent:
            return PartResult(
                "journal", FAIL, f"folder {path.parent} does not exist; {_JOURNAL_HELP}"
            )
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".kiosk-selftest-"):
                pass
        except OSError as exc:
            return PartResult(
                "journal", FAIL, f"cannot write in {folder}: {exc.strerror}; {_JOURNAL_HELP}"
            )
        return PartResult("journal", PASS, f"{path} not created yet; its folder is writable")
    if not os.access(path, os.W_OK):
        return PartResult("journal", FAIL, f"{path} is not writable by this user; {_JOURNAL_HELP}")
    try:
        with Journal.open(path, recover=False) as journal:
            journal.set_meta(SELFTEST_META, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            pending = journal.pending_count()
            size = journal.size_bytes()
    except JournalCorrupt as exc:
        return PartResult(
            "journal",
            FAIL,
            f"{exc}; `kiosk run` moves it aside and starts a new one (keep the old file)",
        )
    except JournalError as exc:
        return PartResult("journal", FAIL, f"{exc}; " + _JOURNAL_HELP)
    return PartResult("journal", PASS, f"{path} writable ({size} bytes, {pending} pending)")


def check_disk(cfg: Config, d: Drivers) -> PartResult:
    folder = _existing(Path(cfg.journal.path).parent)
    free = d.free_bytes(folder)
    need = cfg.journal.min_free_mb * 1024 * 1024
    text = f"{free // (1024 * 1024)} MB free on {folder}"
    text += f" (journal.min_free_mb = {cfg.journal.min_free_mb})"
    if free >= need:
        return PartResult("disk", PASS, text)
    return PartResult(
        "disk",
        FAIL,
        f"{text}; new scans are refused below the minimum: free space "
        "(`sudo journalctl --vacuum-size=50M`, old files) or use a larger SD card",
    )


def _existing(path: Path) -> Path:
    """*path* or its nearest existing parent."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
