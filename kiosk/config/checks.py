"""Checks that look at more than one key: each returns problems (or warnings) as text lines."""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from kiosk.config.schema import (
    BackendConfig,
    CounterConfig,
    MetricsConfig,
    SignalsConfig,
)
from kiosk.source_kinds import SourceKind
from kiosk.staff_pin import hash_problem

RGB_COLOURS = 3  # red, green, blue


def cross_problems(sections: dict[str, Any]) -> list[str]:
    """Every problem between keys of the sections that passed their own checks."""
    problems: list[str] = []
    scanner, camera = sections.get("scanner"), sections.get("camera")
    if (
        scanner is not None
        and SourceKind.REPLAY in scanner.sources
        and not (camera and camera.replay_dir)
    ):
        problems.append('camera.replay_dir: needed when scanner.source = "replay"')
    if (backend := sections.get("backend")) is not None:
        problems.extend(backend_problems(backend))
    if (signals := sections.get("signals")) is not None:
        problems.extend(signals_problems(signals))
    if (counter := sections.get("counter")) is not None:
        problems.extend(counter_problems(counter))
    if (metrics := sections.get("metrics")) is not None:
        problems.extend(metrics_problems(metrics))
    return problems


def cross_warnings(sections: dict[str, Any]) -> list[str]:
    """Settings that are valid but probably not what was meant."""
    warnings: list[str] = []
    counter = sections.get("counter")
    if counter is not None and counter.cancel == "pin" and not counter.pin_hash:
        warnings.append(
            'counter.cancel: "pin" without counter.pin_hash: cancelling on the device is '
            "refused; make a hash with: kiosk config pin-hash"
        )
    return warnings


def fit_scan_budget(b: BackendConfig, table: dict[str, Any]) -> BackendConfig:
    """A scan_budget left out never exceeds read_timeout: files written before the key
    existed, with a short read_timeout, stay valid. One that is set is checked as given."""
    if "scan_budget" not in table and b.scan_budget > b.read_timeout:
        return dataclasses.replace(b, scan_budget=b.read_timeout)
    return b


def backend_problems(b: BackendConfig) -> list[str]:
    problems = []
    url = urlsplit(b.url)
    if url.scheme not in ("http", "https") or not url.hostname:
        problems.append("backend.url: must be an http(s) URL such as https://api.example.fi")
    elif url.scheme == "http" and url.hostname not in ("127.0.0.1", "localhost", "::1"):
        problems.append("backend.url: plain http is only allowed to loopback; use https")
    if not b.issuer:
        problems.append("backend.issuer: must not be empty")
    if b.scan_budget > b.read_timeout:
        problems.append(
            f"backend.scan_budget: {b.scan_budget} s is more than backend.read_timeout "
            f"({b.read_timeout} s); lower scan_budget or raise read_timeout"
        )
    return problems


def signals_problems(s: SignalsConfig) -> list[str]:
    problems = []
    if s.rgb_pins and len(s.rgb_pins) != RGB_COLOURS:
        problems.append(
            f"signals.rgb_pins: an RGB LED has exactly 3 pins [red, green, blue], "
            f"got {len(s.rgb_pins)}; use [] and led_pin for a single LED"
        )
    users: dict[int, list[str]] = {}
    named = [(f"rgb_pins[{i}]", pin) for i, pin in enumerate(s.rgb_pins)]
    if not s.rgb_pins:  # rgb_pins overrides led_pin: an unused led_pin takes no pin
        named.append(("led_pin", s.led_pin))
    named += [
        ("buzzer_pin", s.buzzer_pin),
        ("button_up", s.button_up),
        ("button_down", s.button_down),
        ("button_ok", s.button_ok),
    ]
    for name, pin in named:
        if pin >= 0:
            users.setdefault(pin, []).append(name)
    for pin, names in sorted(users.items()):
        if len(names) > 1:
            problems.append(
                f"signals: GPIO {pin} is given to {' and '.join(names)}; each needs its own pin"
            )
    return problems


def counter_problems(c: CounterConfig) -> list[str]:
    if c.pin_hash and (problem := hash_problem(c.pin_hash)):
        return [f"counter.pin_hash: {problem}"]
    return []


def metrics_problems(m: MetricsConfig) -> list[str]:
    if not m.textfile:
        return []
    path = PurePosixPath(m.textfile)
    if not path.is_absolute():
        return [f'metrics.textfile: must be an absolute path or "" (off), got {m.textfile!r}']
    if path.suffix != ".prom":
        return ["metrics.textfile: node-exporter reads only files ending in .prom"]
    return []
