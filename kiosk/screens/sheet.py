"""Views of rendered screens for people: terminal half-blocks and a labelled contact sheet."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw

from kiosk.screens.layout import HEIGHT, SMALL, WIDTH, font

_HALF_BLOCKS = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
_BACKGROUND = 40  # grey around the panels
_PANEL_OFF = 0
_PANEL_ON = 255


def to_terminal(image: Image.Image) -> str:
    """*image* as text: one character per column, two pixel rows per line (▀ ▄ █ space).

    A 128x64 image gives 32 lines of 128 characters, joined with newlines.
    """
    mono = image.convert("1")
    width, height = mono.size
    pixels = mono.load()
    assert pixels is not None
    lines = []
    for y in range(0, height, 2):
        row = []
        for x in range(width):
            top = bool(pixels[x, y])
            bottom = bool(pixels[x, y + 1]) if y + 1 < height else False
            row.append(_HALF_BLOCKS[(top, bottom)])
        lines.append("".join(row))
    return "\n".join(lines)


def contact_sheet(
    cells: Sequence[tuple[str, Sequence[tuple[str, Image.Image]]]],
    *,
    scale: int = 2,
    per_row: int = 2,
) -> Image.Image:
    """A labelled grid of panels: each cell is (name, [(language, image), ...]).

    Cells are laid out *per_row* to a row; within a cell the languages stand side
    by side, each panel upscaled *scale* times and framed like the real screen.
    Returns a mode "L" image.
    """
    if not cells:
        raise ValueError("contact sheet needs at least one screen")
    langs = max(len(images) for _, images in cells)
    pw, ph = WIDTH * scale, HEIGHT * scale
    pad, label_h = 8, 16 + 4
    cell_w = langs * (pw + pad) + pad
    cell_h = label_h + ph + pad + label_h
    rows = (len(cells) + per_row - 1) // per_row
    sheet = Image.new("L", (per_row * cell_w, rows * cell_h + pad), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.fontmode = "1"
    name_font = font(16, True)
    label_font = font(SMALL, True)
    for index, (name, images) in enumerate(cells):
        left = (index % per_row) * cell_w
        top = (index // per_row) * cell_h + pad
        draw.text((left + pad, top), name, font=name_font, fill=255)
        for n, (lang, image) in enumerate(images):
            x = left + pad + n * (pw + pad)
            y = top + label_h
            panel = image.convert("1").resize((pw, ph), Image.Resampling.NEAREST)
            draw.rectangle((x - 2, y - 2, x + pw + 1, y + ph + 1), outline=140)
            sheet.paste(panel.convert("L").point(lambda v: _PANEL_ON if v else _PANEL_OFF), (x, y))
            draw.text((x, y + ph + 2), lang, font=label_font, fill=180)
    return sheet
