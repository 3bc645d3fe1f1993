"""The ``kiosk`` command line: a thin layer that parses arguments and calls the package.

Each subcommand lives in its own module under ``kiosk.cli`` with two functions,
``register(subparsers)`` and ``run(args) -> int``. Modules keep their heavy
imports inside ``run`` so that ``kiosk --version`` and start-up stay fast.

Exit status: 0 success, 1 runtime failure, 2 bad usage or bad configuration.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from kiosk import __version__
from kiosk.errors import ConfigError, KioskError

COMMANDS = (
    "run",
    "demo",
    "backend",
    "mint",
    "decode",
    "config",
    "status",
    "sync",
    "history",
    "cancel",
    "offline",
    "screens",
    "selftest",
)

log = logging.getLogger("kiosk")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiosk", description="SmartumPay counter kiosk for massage studios."
    )
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"kiosk.cli.{name}_cmd")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help/--version
        return int(exc.code or 0)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 2
    except KioskError as err:
        print(f"kiosk {args.command}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into a pager or head that closed early
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except SystemExit as exc:  # a subcommand's usage error
        return exc.code if isinstance(exc.code, int) else 2


def run_main() -> None:
    """Console-script entry point."""
    sys.exit(main())
