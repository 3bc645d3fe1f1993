"""`kiosk selftest`: one PASS/FAIL/SKIP line per part; exit 0 when nothing failed.

With ``--simulate`` the hardware parts use their simulated twins (so the tool
passes on any machine); the backend, clock, journal and disk checks still run
for real against the configuration.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from kiosk.cli._common import add_config_arg


def register(sub: Any) -> None:
    p = sub.add_parser(
        "selftest",
        help="check scanner, camera, display, LED, buzzer, backend, keys, clock, journal, disk",
    )
    add_config_arg(p)
    p.add_argument(
        "--simulate",
        action="store_true",
        help="use simulated hardware; backend, clock, journal and disk are still checked",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kiosk.cli._common import load, print_json
    from kiosk.selftest import FAIL, run_selftest, simulated, summary

    cfg = load(args)
    quiet = logging.getLogger("hardware")  # its retry messages would repeat the report
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        results = run_selftest(cfg, simulated() if args.simulate else None)
    finally:
        quiet.setLevel(level)
    ok = not any(r.status == FAIL for r in results)
    if args.json:
        print_json({"results": [r.as_dict() for r in results], "ok": ok})
    else:
        for r in results:
            print(r.line())
        print(summary(results) + (" (simulated hardware)" if args.simulate else ""))
    return 0 if ok else 1
