"""`kiosk decode FILE...`: decode QR images with the kiosk's own decoder.

Prints ``FILE: TEXT`` on stdout for every code found (tokens first; control
characters such as line breaks are written as ``\\n``, ``\\r``, ``\\t``, ``\\xNN``
so each code stays on one line, everything else exactly as encoded), and
``FILE: no code found`` or ``kiosk decode: FILE: <problem>`` on stderr. Exit 0 when every
file gave at least one code, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "decode",
        help="decode QR codes in image files with the kiosk's decoder",
        description="Decode QR codes in image files; one 'FILE: TEXT' line per code found.",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="image file (PNG, JPEG...)")
    p.add_argument(
        "--decoder",
        choices=("zxing", "zbar"),
        default="zxing",
        help="decoder library, as [scanner] decoder (default: zxing)",
    )
    p.set_defaults(func=run)


def one_line(text: str) -> str:
    """*text* with control characters escaped, for a single output line."""
    return "".join(
        _ESCAPES.get(c, f"\\x{ord(c):02x}" if ord(c) < 0x20 or ord(c) == 0x7F else c) for c in text
    )


def run(args: argparse.Namespace) -> int:
    from kiosk.decode import decode_file, make_decoder
    from kiosk.errors import DecoderError

    decoder = make_decoder(args.decoder)
    status = 0
    for path in args.files:
        try:
            texts = decode_file(path, decoder)
        except DecoderError as err:
            print(f"kiosk decode: {err}", file=sys.stderr)
            status = 1
            continue
        if not texts:
            print(f"{path}: no code found", file=sys.stderr)
            status = 1
        for text in texts:
            print(f"{path}: {one_line(text)}")
    return status
