"""The configuration's sections as frozen dataclasses: fields, types and defaults are the schema.

A field without a default is required. Limits sit in the field's metadata
(see :mod:`kiosk.config.fields`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from kiosk.config.fields import check_section, toml_key
from kiosk.config.fields import setting as _f
from kiosk.config.secret import MASK, Secret
from kiosk.languages import DEFAULT_LANGUAGE, LANGUAGES, Language
from kiosk.source_kinds import SOURCE_KINDS, SourceKind

DEFAULT_METRICS_TEXTFILE = "/var/lib/prometheus/node-exporter/kiosk.prom"


@dataclass(frozen=True)
class DeviceConfig:
    id: str = _f(pattern=r"[A-Za-z0-9_.-]{1,64}")
    venue: str = _f(pattern=r"ven_[0-9A-Za-z]{1,64}")
    default_service: str = _f("", pattern=r"[A-Za-z0-9_.-]{0,64}")
    timezone: str = _f("Europe/Helsinki")


@dataclass(frozen=True)
class BackendConfig:
    url: str = _f()
    client_id: str = _f(pattern=r"[\x21-\x7e]{1,200}")
    client_secret_file: str = _f()
    issuer: str = _f()
    connect_timeout: float = _f(2.0, min=0.1, max=30.0)
    read_timeout: float = _f(5.0, min=0.1, max=60.0)
    ca_bundle: str = _f("")
    # Seconds a scan waits for the backend before the offline rules decide;
    # at most read_timeout (checked with the other problems).
    scan_budget: float = _f(3.0, min=0.1, max=60.0)


@dataclass(frozen=True)
class ScannerConfig:
    # TOML ``source``: one source or a list of them; every source feeds the same inbox.
    sources: tuple[SourceKind, ...] = _f(
        (SourceKind.SERIAL,), key="source", one_or_list=True, unique=True, min_items=1,
        choices=SOURCE_KINDS,
    )  # fmt: skip
    port: str = _f("/dev/ttyACM0")
    baud: int = _f(9600, min=300, max=4_000_000)
    line_timeout: float = _f(0.5, min=0.05, max=10.0)
    decoder: str = _f("zxing", choices=("zxing", "zbar"))
    hid_device: str = _f("/dev/input/by-id/kiosk-scanner")
    hid_layout: str = _f("us", choices=("us", "fi"))
    repeat_window_scanner: float = _f(3.0, min=0.0, max=60.0)
    repeat_window_camera: float = _f(5.0, min=0.0, max=60.0)

    @property
    def source(self) -> SourceKind:
        """The first (primary) source of :attr:`sources`."""
        return self.sources[0]


@dataclass(frozen=True)
class CameraConfig:
    width: int = _f(640, min=160, max=2304)
    height: int = _f(480, min=120, max=1296)
    fps: float = _f(10.0, min=1.0, max=60.0)
    autofocus: str = _f("continuous", choices=("continuous", "fixed"))
    lens_position: float = _f(4.0, min=0.0, max=15.0)
    metering: str = _f("centre", choices=("centre", "spot", "matrix"))
    max_exposure_us: int = _f(12000, min=100, max=1_000_000)
    exposure_value: float = _f(-0.5, min=-8.0, max=8.0)
    idle_threshold: float = _f(4.0, min=0.0, max=255.0)
    replay_dir: str = _f("")  # source "replay": a folder of images played as the camera


@dataclass(frozen=True)
class DisplayConfig:
    driver: str = _f("ssd1306", choices=("ssd1306", "sh1106", "png", "none"))
    i2c_port: int = _f(1, min=0, max=10)
    address: int = _f(0x3C, min=0x03, max=0x77)
    rotate: int = _f(0, choices=(0, 2))  # screens are landscape: upright or upside down
    contrast: int = _f(255, min=0, max=255)
    language: Language = _f(DEFAULT_LANGUAGE, choices=LANGUAGES)  # noqa: RUF009 (immutable)
    png_dir: str = _f("/var/lib/kiosk/screens")
    result_seconds: float = _f(4.0, min=0.5, max=120.0)
    dim_after: float = _f(300.0, min=5.0, max=86400.0)


@dataclass(frozen=True)
class SignalsConfig:
    led_pin: int = _f(-1, min=-1, max=53)
    rgb_pins: tuple[int, ...] = _f((), min=0, max=53)  # red, green, blue; overrides led_pin
    buzzer_pin: int = _f(-1, min=-1, max=53)
    buzzer_kind: str = _f("active", choices=("active", "passive"))
    button_up: int = _f(-1, min=-1, max=53)
    button_down: int = _f(-1, min=-1, max=53)
    button_ok: int = _f(-1, min=-1, max=53)
    long_press: float = _f(2.0, min=0.5, max=10.0)


@dataclass(frozen=True)
class JournalConfig:
    path: str = _f("/var/lib/kiosk/journal.db")
    retention_days: int = _f(90, min=1, max=3650)
    min_free_mb: int = _f(20, min=0, max=100_000)
    # An upload that failed this many times is quarantined: kept, retried every quarantine_retry s.
    quarantine_after: int = _f(20, min=1, max=10_000)
    quarantine_retry: float = _f(3600.0, min=1.0, max=7 * 86400.0)


@dataclass(frozen=True)
class OfflineConfig:
    enabled: bool = _f(True)
    max_amount_cents: int = _f(8000, min=0, max=10_000_000)
    max_total_cents: int = _f(30000, min=0, max=100_000_000)
    max_count: int = _f(10, min=0, max=10_000)
    max_age_hours: float = _f(24.0, min=0.0, max=24.0 * 30)
    # This many conflicts in the last 24 h turn offline acceptance off.
    max_conflicts_per_day: int = _f(3, min=1, max=1000)


@dataclass(frozen=True)
class CounterConfig:
    # Cancelling on the device: "pin" needs pin_hash (without one, it is refused).
    cancel: str = _f("pin", choices=("pin", "off", "open"))
    pin_hash: str = _f("", repr=False)  # kiosk.staff_pin format; "" = none
    amount_check: str = _f("warn", choices=("warn", "off"))


@dataclass(frozen=True)
class MetricsConfig:
    textfile: str = _f(DEFAULT_METRICS_TEXTFILE)  # "" turns the metrics file off
    interval: float = _f(15.0, min=0.1, max=3600.0)


@dataclass(frozen=True)
class LogConfig:
    level: str = _f("info", choices=("debug", "info", "warning", "error"))


def _defaults(cls: type) -> Any:
    values, problems = check_section(cls, {}, "?")
    assert not problems, problems
    return cls(**values)


@dataclass(frozen=True)
class Config:
    device: DeviceConfig
    backend: BackendConfig
    client_secret: Secret
    scanner: ScannerConfig = field(default_factory=lambda: _defaults(ScannerConfig))
    camera: CameraConfig = field(default_factory=lambda: _defaults(CameraConfig))
    display: DisplayConfig = field(default_factory=lambda: _defaults(DisplayConfig))
    signals: SignalsConfig = field(default_factory=lambda: _defaults(SignalsConfig))
    journal: JournalConfig = field(default_factory=lambda: _defaults(JournalConfig))
    offline: OfflineConfig = field(default_factory=lambda: _defaults(OfflineConfig))
    counter: CounterConfig = field(default_factory=lambda: _defaults(CounterConfig))
    metrics: MetricsConfig = field(default_factory=lambda: _defaults(MetricsConfig))
    log: LogConfig = field(default_factory=lambda: _defaults(LogConfig))
    source: str = ""
    warnings: tuple[str, ...] = ()

    def public_dict(self) -> dict[str, Any]:
        """The effective configuration by TOML key for display, secrets masked."""
        out: dict[str, Any] = {}
        for name in SECTIONS:
            section = getattr(self, name)
            out[name] = {
                toml_key(f): _plain(getattr(section, f.name)) for f in dataclasses.fields(section)
            }
        out["backend"]["client_secret"] = MASK
        if out["counter"]["pin_hash"]:
            out["counter"]["pin_hash"] = MASK
        return out


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


SECTIONS: dict[str, type] = {
    "device": DeviceConfig,
    "backend": BackendConfig,
    "scanner": ScannerConfig,
    "camera": CameraConfig,
    "display": DisplayConfig,
    "signals": SignalsConfig,
    "journal": JournalConfig,
    "offline": OfflineConfig,
    "counter": CounterConfig,
    "metrics": MetricsConfig,
    "log": LogConfig,
}
REQUIRED_SECTIONS = ("device", "backend")
