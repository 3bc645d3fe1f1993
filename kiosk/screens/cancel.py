"""Screens on the way to a cancel: the staff PIN, a wrong PIN, the lock-out, cancel off.

The PIN row shows one cell per digit: a dot for each confirmed digit, the digit
being edited dark on a lit cell, and a line for each digit still needed up to
the shortest PIN. Digits are never shown once confirmed.
"""

from __future__ import annotations

from kiosk import views
from kiosk.screens import i18n
from kiosk.screens.layout import SMALL, WIDTH, Block, Box, Frame, Line, fit, header, text_width

DIGIT_SIZE = 24
CELL = 14  # pixels per digit cell: 8 cells (the longest PIN) fit the panel
MASK, BLANK = "•", "_"


def compose_cancel(view: views.View, lang: str) -> Frame | None:
    """The frame for a PIN or cancel view, or None when *view* is none of them."""
    if isinstance(view, views.PinPrompt):
        return _prompt(view, lang)
    if isinstance(view, views.PinWrong):
        return _message(
            "cross",
            "head.pin_wrong",
            i18n.text("pin.tries_left", lang, n=view.tries_left),
            i18n.text("pin.try_again", lang),
            lang,
        )
    if isinstance(view, views.PinLocked):
        wait = i18n.format_duration(view.seconds_left, lang)
        return _message(
            "alert",
            "head.locked",
            i18n.text("pin.locked", lang),
            i18n.text("pin.wait", lang, time=wait),
            lang,
        )
    if isinstance(view, views.CancelUnavailable):
        key = "cancel.off" if view.reason == "off" else "cancel.no_pin"
        return _message("alert", "head.cancel", i18n.text(key, lang), "", lang)
    return None


def _prompt(view: views.PinPrompt, lang: str) -> Frame:
    frame = Frame()
    top = header(frame, None, i18n.text("pin.title", lang))
    cells = [MASK] * view.entered + [str(view.digit % 10)]
    cells += [BLANK] * (view.min_digits - len(cells))
    x = (WIDTH - CELL * len(cells)) // 2
    y = top + 1
    for index, cell in enumerate(cells):
        left = x + index * CELL
        glyph_x = left + (CELL - text_width(cell, DIGIT_SIZE, True)) // 2
        ink = 1
        if index == view.entered:  # the digit being edited
            frame.bars.append(Box(left, y, CELL, DIGIT_SIZE))
            ink = 0
        frame.lines.append(Line(cell, glyph_x, y, DIGIT_SIZE, True, ink))
    if view.entered >= view.min_digits:
        hold = "pin.hold_done"
    elif view.entered:
        hold = "pin.hold_erase"
    else:
        hold = "pin.hold_back"
    frame.lines += fit(
        [
            Block(i18n.text("pin.position", lang, n=view.entered + 1)),
            Block(i18n.text(hold, lang)),
        ],
        Box(1, y + DIGIT_SIZE, WIDTH - 2, 64 - y - DIGIT_SIZE),
    )
    return frame


def _message(icon: str, head: str, main: str, detail: str, lang: str) -> Frame:
    frame = Frame()
    top = header(frame, icon, i18n.text(head, lang))
    blocks = [Block(main, (16, SMALL), bold=True, max_lines=3)]
    if detail:
        blocks.append(Block(detail, max_lines=2))
    frame.lines += fit(blocks, Box(1, top, WIDTH - 2, 64 - top))
    return frame
