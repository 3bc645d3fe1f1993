"""`kiosk config check [PATH]`: validate a configuration file, report every problem.

`kiosk config pin-hash`: read a staff PIN without echo and print its hash for
``[counter] pin_hash``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("config", help="check the configuration")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate a configuration file")
    check.add_argument("path", nargs="?", type=Path, help="file (default /etc/kiosk/kiosk.toml)")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(func=run)
    pin = actions.add_parser(
        "pin-hash",
        help="hash a staff PIN for [counter] pin_hash",
        description="Reads the PIN (4-8 digits) from the terminal without echo, twice, or "
        "one line from standard input; prints its hash.",
    )
    pin.set_defaults(func=run_pin_hash)


def run(args: argparse.Namespace) -> int:
    from kiosk.cli._common import print_json
    from kiosk.config import env_path, load_config
    from kiosk.errors import ConfigError

    path = args.path or env_path()
    try:
        cfg = load_config(path, missing_secret_ok=True)
    except ConfigError as err:
        if args.json:
            print_json({"ok": False, "path": str(path), "problems": err.problems})
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 2
    if args.json:
        print_json(
            {
                "ok": True,
                "path": str(path),
                "warnings": list(cfg.warnings),
                "config": cfg.public_dict(),
            }
        )
        return 0
    for warning in cfg.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{path}: OK")
    for section, values in cfg.public_dict().items():
        print(f"[{section}]")
        for key, value in values.items():
            print(f"  {key} = {value!r}")
    return 0


def run_pin_hash(args: argparse.Namespace) -> int:
    from kiosk.staff_pin import hash_pin, pin_problem

    pin = _read_pin()
    if pin is None:
        return 2
    problem = pin_problem(pin)
    if problem:
        print(f"PIN refused: {problem}", file=sys.stderr)
        return 2
    print(hash_pin(pin))
    print('put it in the configuration as [counter] pin_hash = "..."', file=sys.stderr)
    return 0


def _read_pin() -> str | None:
    """The PIN from the terminal (asked twice, no echo) or one line of standard input."""
    import getpass

    if not sys.stdin.isatty():
        return sys.stdin.readline(64).rstrip("\r\n")
    try:
        first = getpass.getpass("Staff PIN (4-8 digits): ")
        again = getpass.getpass("Same PIN again: ")
    except (EOFError, KeyboardInterrupt):
        print("no PIN given", file=sys.stderr)
        return None
    if first != again:
        print("the two PINs differ; nothing written", file=sys.stderr)
        return None
    return first
