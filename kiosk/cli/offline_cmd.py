"""`kiosk offline clear-conflicts`: let a technician turn offline acceptance back on.

After ``[offline] max_conflicts_per_day`` conflicts in 24 h the kiosk refuses
offline acceptance. Once the cause is understood (receipts shown at two
counters, a network cut on purpose), the technician clears the count: the
clear is stored in the journal with its time, who made it and which conflicts it
set aside (not by their time: a clock set back cannot undo it), and only
conflicts recorded after it count. The running service follows at its next scan.
"""

from __future__ import annotations

import argparse
import getpass
import os
from typing import Any

from kiosk.cli._common import add_config_arg


def register(sub: Any) -> None:
    p = sub.add_parser("offline", help="offline acceptance: clear the conflict count")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    clear = actions.add_parser(
        "clear-conflicts",
        help="set today's conflicts aside so that offline acceptance resumes",
    )
    add_config_arg(clear)
    clear.add_argument("--by", help="who clears (default: the logged-in user)")
    clear.add_argument("--json", action="store_true", help="print one JSON document")
    clear.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kiosk.cli._common import flow_context, iso, load, print_json
    from kiosk.flows.offline import clear_conflicts

    cfg = load(args)
    by = args.by or os.environ.get("SUDO_USER") or _user()
    with flow_context(cfg) as ctx:
        record = clear_conflicts(ctx.journal, ctx.clocks(), by=by)
    limit = cfg.offline.max_conflicts_per_day
    if args.json:
        print_json({"cleared_at": iso(record.at), "by": record.by, "conflicts": record.conflicts})
    else:
        print(
            f"cleared {record.conflicts} conflict(s) at {iso(record.at)} by {record.by};"
            f" offline acceptance is on again until {limit} new conflict(s) in 24 h"
        )
    return 0


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
