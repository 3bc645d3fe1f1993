"""`kiosk sync`: being built (placeholder registration only)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("sync", help="(being built)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print("kiosk sync: not available in this build", file=sys.stderr)
    return 1
