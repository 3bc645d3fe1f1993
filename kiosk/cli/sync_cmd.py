"""`kiosk sync`: upload pending journal entries now; exit 0 only when none is left."""

from __future__ import annotations

import argparse
from typing import Any

from kiosk.cli._common import add_config_arg


def register(sub: Any) -> None:
    p = sub.add_parser("sync", help="upload pending journal entries now")
    add_config_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kiosk.cli._common import flow_context, load, print_json
    from kiosk.flows.sync import sync_once

    cfg = load(args)
    with flow_context(cfg) as ctx:
        report = sync_once(ctx)
    if args.json:
        print_json(report.__dict__)
    else:
        print(f"uploaded {report.uploaded}, conflicts {report.conflicts}, left {report.remaining}")
        if report.error:
            print(f"stopped: {report.error}")
    return 0 if report.remaining == 0 else 1
