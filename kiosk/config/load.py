"""Reading a TOML file once and validating it into a :class:`Config`, every problem at once."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from kiosk.config.checks import cross_problems, cross_warnings, fit_scan_budget
from kiosk.config.fields import check_section, hint
from kiosk.config.schema import REQUIRED_SECTIONS, SECTIONS, Config
from kiosk.config.secret import Secret, absent, read_secret_file
from kiosk.errors import ConfigError

DEFAULT_PATH = Path("/etc/kiosk/kiosk.toml")


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
    sections: dict[str, Any] = {}
    for name in raw:
        if name not in SECTIONS:
            problems.append(f"{name}: unknown section{hint(name, SECTIONS)}")
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
        values, section_problems = check_section(cls, table, name)
        problems.extend(section_problems)
        if not section_problems:
            sections[name] = cls(**values)
    if "backend" in sections:
        sections["backend"] = fit_scan_budget(sections["backend"], raw["backend"])
    problems.extend(cross_problems(sections))
    warnings = cross_warnings(sections)
    secret = Secret("")
    backend = sections.get("backend")
    if backend is not None and read_secret:
        secret_path = Path(backend.client_secret_file)
        if base_dir is not None and not secret_path.is_absolute():
            secret_path = base_dir / secret_path
        try:
            secret = read_secret_file(secret_path)
        except ConfigError as err:
            if missing_secret_ok and absent(secret_path):
                warnings.extend(f"{p} (kiosk run needs it)" for p in err.problems)
            else:
                problems.extend(err.problems)
    if problems:
        raise ConfigError(f"{source}: {p}" for p in problems)
    return Config(client_secret=secret, source=source, warnings=tuple(warnings), **sections)


def env_path() -> Path:
    """The config path from $KIOSK_CONFIG, else the default."""
    return Path(os.environ.get("KIOSK_CONFIG", str(DEFAULT_PATH)))
