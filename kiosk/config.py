"""Configuration: TOML read once, validated into frozen objects, every problem reported.

Each section is a frozen dataclass; its fields, types and defaults are the
schema. A field without a default is required. Extra limits sit in the field's
metadata (``choices``, ``min``, ``max``, ``pattern``). ``load_config`` collects
every problem as ``file: section.key: message`` and raises one ConfigError.

The client secret is read from ``backend.client_secret_file`` into a
:class:`Secret`, whose ``str``/``repr`` are masked.
"""

from __future__ import annotations

import dataclasses
import difflib
import errno
import os
import re
import stat
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kiosk.errors import ConfigError

DEFAULT_PATH = Path("/etc/kiosk/kiosk.toml")
MASK = "********"
MAX_SECRET_BYTES = 4096


class Secret:
    """A secret value whose text form is always masked."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _f(default: Any = dataclasses.MISSING, **meta: Any) -> Any:
    if default is dataclasses.MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


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


@dataclass(frozen=True)
class ScannerConfig:
    source: str = _f("serial", choices=("serial", "camera", "hid", "stdin", "replay"))
    port: str = _f("/dev/ttyACM0")
    baud: int = _f(9600, min=300, max=4_000_000)
    line_timeout: float = _f(0.5, min=0.05, max=10.0)
    decoder: str = _f("zxing", choices=("zxing", "zbar"))
    hid_device: str = _f("/dev/input/by-id/kiosk-scanner")
    hid_layout: str = _f("us", choices=("us", "fi"))
    repeat_window_scanner: float = _f(3.0, min=0.0, max=60.0)
    repeat_window_camera: float = _f(5.0, min=0.0, max=60.0)


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
    language: str = _f("fi", choices=("fi", "sv", "en"))
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


@dataclass(frozen=True)
class OfflineConfig:
    enabled: bool = _f(True)
    max_amount_cents: int = _f(8000, min=0, max=10_000_000)
    max_total_cents: int = _f(30000, min=0, max=100_000_000)
    max_count: int = _f(10, min=0, max=10_000)
    max_age_hours: float = _f(24.0, min=0.0, max=24.0 * 30)


@dataclass(frozen=True)
class LogConfig:
    level: str = _f("info", choices=("debug", "info", "warning", "error"))


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
    log: LogConfig = field(default_factory=lambda: _defaults(LogConfig))
    source: str = ""
    warnings: tuple[str, ...] = ()

    def public_dict(self) -> dict[str, Any]:
        """The effective configuration for display, secrets masked."""
        out: dict[str, Any] = {}
        for name in SECTIONS:
            out[name] = dataclasses.asdict(getattr(self, name))
        out["backend"]["client_secret"] = MASK
        return out


SECTIONS: dict[str, type] = {
    "device": DeviceConfig,
    "backend": BackendConfig,
    "scanner": ScannerConfig,
    "camera": CameraConfig,
    "display": DisplayConfig,
    "signals": SignalsConfig,
    "journal": JournalConfig,
    "offline": OfflineConfig,
    "log": LogConfig,
}
REQUIRED_SECTIONS = ("device", "backend")


def _defaults(cls: type) -> Any:
    values, problems = _section(cls, {}, "?")
    assert not problems, problems
    return cls(**values)


def load_config(
    path: Path | str = DEFAULT_PATH, *, read_secret: bool = True, missing_secret_ok: bool = False
) -> Config:
    """Read and validate *path*. Raises ConfigError listing every problem.

    With *missing_secret_ok* a secret file that does not exist yet is a warning
    (``Config.warnings``), not a problem: ``config check`` before provisioning.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found; pass --config PATH"]) from None
    except PermissionError:
        raise ConfigError(
            [f"{path}: not readable by this user; check its owner and mode"]
        ) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read: {exc.strerror}"]) from None
    return parse_config(
        raw,
        source=str(path),
        base_dir=path.parent,
        read_secret=read_secret,
        missing_secret_ok=missing_secret_ok,
    )


def parse_config(
    raw: dict[str, Any],
    *,
    source: str = "<config>",
    base_dir: Path | None = None,
    read_secret: bool = True,
    missing_secret_ok: bool = False,
) -> Config:
    """Validate a parsed TOML document. Raises ConfigError listing every problem."""
    problems: list[str] = []
    warnings: list[str] = []
    sections: dict[str, Any] = {}
    for name in raw:
        if name not in SECTIONS:
            problems.append(f"{name}: unknown section{_hint(name, SECTIONS)}")
    for name, cls in SECTIONS.items():
        table = raw.get(name)
        if table is None:
            if name in REQUIRED_SECTIONS:
                problems.append(f"{name}: missing section [{name}]")
                continue
            table = {}
        if not isinstance(table, dict):
            problems.append(f"{name}: must be a table [{name}]")
            continue
        values, section_problems = _section(cls, table, name)
        problems.extend(section_problems)
        if not section_problems:
            sections[name] = cls(**values)
    scanner, camera = sections.get("scanner"), sections.get("camera")
    if scanner is not None and scanner.source == "replay" and not (camera and camera.replay_dir):
        problems.append('camera.replay_dir: needed when scanner.source = "replay"')
    secret = Secret("")
    backend = sections.get("backend")
    if backend is not None:
        problems.extend(_check_backend(backend))
        if read_secret:
            secret_path = Path(backend.client_secret_file)
            if base_dir is not None and not secret_path.is_absolute():
                secret_path = base_dir / secret_path
            try:
                secret = read_secret_file(secret_path)
            except ConfigError as err:
                if missing_secret_ok and _absent(secret_path):
                    warnings.extend(f"{p} (kiosk run needs it)" for p in err.problems)
                else:
                    problems.extend(err.problems)
    if problems:
        raise ConfigError(f"{source}: {p}" for p in problems)
    return Config(client_secret=secret, source=source, warnings=tuple(warnings), **sections)


def _absent(path: Path) -> bool:
    """True when nothing (not even a dangling link) is at *path*; a bad name is not absent."""
    try:
        return not path.exists() and not path.is_symlink()
    except OSError:  # e.g. a name too long: a mistake to report, not a file still to come
        return False


def _check_backend(b: BackendConfig) -> list[str]:
    problems = []
    url = urlsplit(b.url)
    if url.scheme not in ("http", "https") or not url.hostname:
        problems.append("backend.url: must be an http(s) URL such as https://api.example.fi")
    elif url.scheme == "http" and url.hostname not in ("127.0.0.1", "localhost", "::1"):
        problems.append("backend.url: plain http is only allowed to loopback; use https")
    if not b.issuer:
        problems.append("backend.issuer: must not be empty")
    return problems


def read_secret_file(path: Path) -> Secret:
    """Read a secret file that only its owner can read. Raises ConfigError."""
    where = f"backend.client_secret_file: {path}"
    try:
        if path.is_symlink():
            raise ConfigError([f"{where}: is a symlink; put the secret in a plain file"])
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError([f"{where}: file not found"]) from None
    except PermissionError:
        raise ConfigError([f"{where}: cannot be read by this user; check its owner"]) from None
    except OSError as exc:  # a file as a parent directory, a symlink loop, a name too long
        raise ConfigError([f"{where}: cannot be read ({exc.strerror})"]) from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError([f"{where}: not a regular file"])
    if st.st_mode & 0o077:
        raise ConfigError(
            [
                f"{where}: readable by group or others (mode {st.st_mode & 0o777:o}); "
                f"run chmod 600 {path}"
            ]
        )
    try:
        raw = _read_regular(path, MAX_SECRET_BYTES + 1)
        if len(raw) > MAX_SECRET_BYTES:
            raise ConfigError([f"{where}: over {MAX_SECRET_BYTES} bytes; a secret is one line"])
        text = raw.decode("utf-8").strip()
    except PermissionError:
        raise ConfigError([f"{where}: cannot be read by this user; check its owner"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{where}: cannot be read ({exc})"]) from None
    if not text:
        raise ConfigError([f"{where}: file is empty"])
    return Secret(text)


def _read_regular(path: Path, limit: int) -> bytes:
    """At most *limit* bytes of *path*, refusing anything that became a link, FIFO or device
    since it was checked (opened without following links and without blocking)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file any more")
        return f.read(limit)


def _section(cls: type, table: dict[str, Any], name: str) -> tuple[dict[str, Any], list[str]]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key in table:
        if key not in fields:
            problems.append(f"{name}.{key}: unknown key{_hint(key, fields)}")
    for key, f in fields.items():
        where = f"{name}.{key}"
        if key not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.append(f"{where}: missing (required)")
            continue
        value, problem = _check(table[key], hints[key], f.metadata)
        if problem:
            problems.append(f"{where}: {problem}")
        else:
            values[key] = value
    return values, problems


def _check(value: Any, kind: Any, meta: Any) -> tuple[Any, str]:
    origin = typing.get_origin(kind)
    if origin in (list, tuple):
        (item,) = typing.get_args(kind)[:1]
        if not isinstance(value, list):
            return None, "must be a list"
        checked = []
        for v in value:
            c, problem = _check(v, item, meta)
            if problem:
                return None, f"list item {v!r}: {problem}"
            checked.append(c)
        return tuple(checked), ""
    if origin is types.UnionType:
        kind = typing.get_args(kind)[0]
    if kind is bool:
        if not isinstance(value, bool):
            return None, "must be true or false"
    elif kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            return None, f"must be a whole number, got {_shown(value)}"
    elif kind is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None, f"must be a number, got {_shown(value)}"
        value = float(value)
    elif kind is str and not isinstance(value, str):
        return None, f"must be a string, got {_shown(value)}"
    if "choices" in meta and value not in meta["choices"]:
        return None, f"must be one of {', '.join(map(str, meta['choices']))}; got {_shown(value)}"
    if "min" in meta and value < meta["min"]:
        return None, f"must be at least {meta['min']}, got {value}"
    if "max" in meta and value > meta["max"]:
        return None, f"must be at most {meta['max']}, got {value}"
    if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
        return None, f"has the wrong form: {_shown(value)}"
    return value, ""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _hint(key: str, known: Any) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def env_path() -> Path:
    """The config path from $KIOSK_CONFIG, else the default."""
    return Path(os.environ.get("KIOSK_CONFIG", str(DEFAULT_PATH)))
