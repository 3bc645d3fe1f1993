"""`kiosk demo`: a scripted counter session on simulated hardware; exits 0."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kiosk.languages import DEFAULT_LANGUAGE, LANGUAGES


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="play a scripted counter session on simulated hardware")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("kiosk-demo"),
        help="folder for the screen PNGs (default ./kiosk-demo)",
    )
    p.add_argument(
        "--lang",
        choices=[str(lang) for lang in LANGUAGES],
        default=str(DEFAULT_LANGUAGE),
        help=f"screen language (default {DEFAULT_LANGUAGE})",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kiosk.demo import run_demo
    from kiosk.logs import setup_logging

    setup_logging("error")
    return run_demo(args.out, lang=args.lang)
