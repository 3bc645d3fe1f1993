"""`kiosk mint`: ask a `--dev` reference backend for a receipt or paycode token.

Prints the token on the first line of stdout; for a paycode its 12-digit code
on the second. ``--qr FILE.png`` also writes the token as a QR image.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, assert_never

from kiosk.token_shape import BENEFITS
from kiosk.vocabulary import TokenKind

DEMO_VENUE = "ven_demo0000000000"
DEFAULT_RECEIPT_CENTS = 6500
DEFAULT_BALANCE_CENTS = 10000


def register(sub: Any) -> None:
    p = sub.add_parser(
        "mint",
        help="get a test receipt or paycode from a --dev reference backend",
        description=(
            "Mint a token with a reference backend started with --dev. Prints the token; "
            "for a paycode also its 12-digit code on a second line."
        ),
    )
    p.add_argument("kind", choices=[k.value for k in TokenKind])
    p.add_argument("--backend", required=True, help="backend URL, e.g. http://127.0.0.1:8787")
    p.add_argument("--venue", default=DEMO_VENUE, help=f"venue of a receipt ({DEMO_VENUE})")
    p.add_argument(
        "--amount",
        type=int,
        default=None,
        help=f"cents: receipt amount ({DEFAULT_RECEIPT_CENTS}) or paycode balance "
        f"({DEFAULT_BALANCE_CENTS})",
    )
    p.add_argument("--ben", default=BENEFITS[0], choices=BENEFITS, help="benefit")
    p.add_argument("--ttl", type=int, default=300, help="paycode lifetime in seconds (300)")
    p.add_argument("--qr", type=Path, default=None, help="also write the token as a QR PNG")
    p.add_argument("--timeout", type=float, default=5.0, help="HTTP timeout in seconds (5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import requests

    kind = TokenKind(args.kind)
    body: dict[str, Any]
    match kind:
        case TokenKind.RECEIPT:
            path = "/dev/receipts"
            body = {
                "venue": args.venue,
                "amount_cents": args.amount if args.amount is not None else DEFAULT_RECEIPT_CENTS,
                "ben": args.ben,
            }
        case TokenKind.PAYCODE:
            path = "/dev/paycodes"
            body = {
                "balance_cents": args.amount if args.amount is not None else DEFAULT_BALANCE_CENTS,
                "ben": args.ben,
                "ttl_s": args.ttl,
            }
        case _:
            assert_never(kind)
    url = args.backend.rstrip("/") + path
    try:
        resp = requests.post(url, json=body, timeout=(args.timeout, args.timeout))
    except requests.RequestException as exc:
        return _fail(
            f"cannot reach the backend at {args.backend} ({type(exc).__name__}); "
            "is `kiosk backend --dev` running there?"
        )
    try:
        answer = resp.json()
    except ValueError:
        answer = None
    if resp.status_code == 404 and (
        not isinstance(answer, dict) or answer.get("status") == "not_found"
    ):
        return _fail(
            f"{args.backend} is not a dev backend (no {path}); start it with `kiosk backend --dev`"
        )
    if not isinstance(answer, dict):
        return _fail(
            f"{args.backend} answered {resp.status_code} without JSON; is it a kiosk backend?"
        )
    if resp.status_code != 200 or not isinstance(answer.get("token"), str):
        message = answer.get("message", "unexpected answer")
        return _fail(f"the backend refused: {resp.status_code} {message}")
    token = answer["token"]
    print(token)
    match kind:
        case TokenKind.PAYCODE:
            print(answer.get("code", ""))
            print(f"kiosk mint: paycode {answer.get('jti')}", file=sys.stderr)
        case TokenKind.RECEIPT:
            print(f"kiosk mint: receipt {answer.get('tx')}", file=sys.stderr)
        case _:
            assert_never(kind)
    if args.qr is not None:
        try:
            _write_qr(token, args.qr)
        except OSError as exc:
            return _fail(f"cannot write {args.qr}: {exc.strerror}")
        print(f"kiosk mint: QR written to {args.qr}", file=sys.stderr)
    return 0


def _write_qr(text: str, path: Path) -> None:
    """Write *text* as a QR code PNG with zxing-cpp's encoder (4 px per module)."""
    import numpy as np
    import zxingcpp
    from PIL import Image

    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    image = zxingcpp.write_barcode_to_image(barcode, scale=4)
    Image.fromarray(np.asarray(image)).save(path, format="PNG")


def _fail(message: str) -> int:
    print(f"kiosk mint: {message}", file=sys.stderr)
    return 1
