"""`kiosk screens --out DIR [--scale N] [--lang L]`: every screen in every language as PNG.

Writes ``DIR/<lang>/<name>.png`` (the panel's own 128x64 1-bit frame) and
``DIR/<lang>/x<N>/<name>.png`` (upscaled for people), then prints how many
files it wrote. Exit 0, or 1 when the folder cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from kiosk.languages import LANGUAGES

DEFAULT_SCALE = 4


def register(sub: Any) -> None:
    p = sub.add_parser(
        "screens",
        help="render every screen in every language to PNG",
        description="Render every screen, in every language, to PNG files.",
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument(
        "--scale",
        type=int,
        default=DEFAULT_SCALE,
        metavar="N",
        help=f"upscale factor of the copies for people (default {DEFAULT_SCALE}; 1 = none)",
    )
    p.add_argument(
        "--lang",
        action="append",
        choices=[str(lang) for lang in LANGUAGES],
        help="only this language (repeatable; default all)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from kiosk import screens
    from kiosk.errors import KioskError

    if not 1 <= args.scale <= 16:
        print("kiosk screens: --scale must be between 1 and 16", file=sys.stderr)
        return 2
    langs = args.lang or list(screens.LANGUAGES)
    out: Path = args.out
    written = 0
    try:
        for lang in langs:
            folder = out / lang
            big = folder / f"x{args.scale}"
            folder.mkdir(parents=True, exist_ok=True)
            if args.scale > 1:
                big.mkdir(exist_ok=True)
            for name, view in screens.samples():
                image = screens.render(view, lang)
                image.save(folder / f"{name}.png")
                written += 1
                if args.scale > 1:
                    size = (image.width * args.scale, image.height * args.scale)
                    image.resize(size, Image.Resampling.NEAREST).save(big / f"{name}.png")
                    written += 1
    except OSError as exc:
        raise KioskError(f"cannot write screens to {out}: {exc}") from exc
    print(f"wrote {written} PNG files for {len(langs)} language(s) to {out}")
    return 0
