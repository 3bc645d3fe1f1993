"""`kiosk sync`: upload pending journal entries now; exit 0 only when none is left.

Every open request is tried once, backed-off and quarantined ones included; one
that fails is left for later and the others go on.
"""

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
        report = sync_once(ctx, everything=True)
    if args.json:
        print_json(report.__dict__)
    else:
        print(
            f"uploaded {report.uploaded}, conflicts {report.conflicts}, left {report.remaining}"
            f" (failed now {report.failed}, quarantined {report.quarantined})"
        )
        if report.error:
            print(f"stopped: {report.error}")
    return 0 if report.remaining == 0 else 1
