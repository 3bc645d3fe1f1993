"""`kiosk cancel TX --reason TEXT`: cancel a same-day transaction at the backend."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from kiosk.cli._common import add_config_arg


def register(sub: Any) -> None:
    p = sub.add_parser("cancel", help="cancel a same-day transaction")
    p.add_argument("tx", help="transaction id, e.g. tx_R60D21hL60bj5N1v")
    p.add_argument("--reason", required=True, help="why (kept with the transaction)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_config_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kiosk.cli._common import flow_context, load
    from kiosk.flows.payment import cancel
    from kiosk.tokens import TX_SHAPE

    if not TX_SHAPE.fullmatch(args.tx):
        print(
            f"kiosk cancel: {args.tx!r} is not a transaction id (tx_ and 16 letters/digits)",
            file=sys.stderr,
        )
        return 2
    try:
        args.reason.encode("utf-8")
    except UnicodeEncodeError:
        # Bytes that are not UTF-8 reach sys.argv as lone surrogates (a Latin-1 terminal).
        print(
            "kiosk cancel: --reason is not valid UTF-8 text; set the terminal to UTF-8"
            " (e.g. LANG=C.UTF-8) or type the reason without accented letters",
            file=sys.stderr,
        )
        return 2
    reason = re.sub(r"[\x00-\x1f]", " ", args.reason).strip()
    if not reason:
        print("kiosk cancel: --reason must not be empty", file=sys.stderr)
        return 2
    cfg = load(args)
    if sys.stdin.isatty() and not args.yes:
        answer = input(f"Cancel {args.tx}? Money goes back to the customer. [y/N] ")
        if answer.strip().lower() not in ("y", "yes", "k", "kyllä", "j", "ja"):
            print("not cancelled")
            return 1
    with flow_context(cfg) as ctx:
        outcome = cancel(ctx, args.tx, reason)
    if outcome.accepted:  # a cancel that went through
        print(f"{args.tx}: cancelled")
        return 0
    print(f"{args.tx}: not cancelled ({outcome.reason or outcome.word})", file=sys.stderr)
    return 1
