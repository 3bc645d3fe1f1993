"""`kiosk config check [PATH]`: validate a configuration file, report every problem."""

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
