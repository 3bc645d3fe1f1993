"""Compose every view of :mod:`kiosk.views` into a :class:`~kiosk.screens.layout.Frame`.

Pure functions of (view, language): no clock, no device. The ready screen moves
by one pixel each minute of idle time (a 3x3 cycle) so that no pixel stays lit
for hours; its content keeps a one-pixel margin so the shift never clips it.
"""

from __future__ import annotations

from typing import assert_never

from kiosk import views
from kiosk.screens import i18n
from kiosk.screens.cancel import compose_cancel
from kiosk.screens.layout import (
    HEIGHT,
    SMALL,
    WIDTH,
    Block,
    Box,
    Frame,
    Icon,
    Line,
    ellipsize,
    fit,
    header,
    text_width,
)
from kiosk.screens.report import compose_report
from kiosk.screens.results import AMOUNT_SIZES, REASON_SIZES, compose_result
from kiosk.vocabulary import RequestKind

BODY = Box(1, 14, WIDTH - 2, HEIGHT - 14)
MENU_ROWS = 3
SHIFT_PERIOD = 60.0  # seconds of idle time per one-pixel step
SHIFTS = ((0, 0), (1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1))


def compose(view: views.View, lang: str) -> Frame:
    """The frame for *view* in *lang*. Raises ValueError (language) or TypeError (view)."""
    i18n.check_language(lang)
    if isinstance(view, views.Ready):
        return _ready(view, lang)
    if isinstance(view, views.Checking):
        return _checking(view, lang)
    if isinstance(view, views.Result):
        return compose_result(view.outcome, lang)
    if isinstance(view, views.ServiceMenu):
        return _menu(view, lang)
    if isinstance(view, views.ConfirmCharge):
        return _confirm_charge(view, lang)
    if isinstance(view, views.CancelConfirm):
        return _cancel_confirm(view, lang)
    if isinstance(view, views.StillCharging):
        return _still_charging(view, lang)
    cancel = compose_cancel(view, lang)
    if cancel is not None:
        return cancel
    if isinstance(view, views.Alarm):
        return _alarm(view, lang)
    if isinstance(view, views.TechInfo):
        return _tech(view, lang)
    if isinstance(view, views.DayReport):
        return compose_report(view, lang)
    if isinstance(view, views.OutOfService):
        return _out_of_service(view, lang)
    raise TypeError(f"no screen for {type(view).__name__}")


def ready_shift(idle_seconds: float) -> tuple[int, int]:
    """The (dx, dy) burn-in offset of the ready screen after *idle_seconds*."""
    step = int(max(idle_seconds, 0.0) // SHIFT_PERIOD)
    return SHIFTS[step % len(SHIFTS)]


def _ready(view: views.Ready, lang: str) -> Frame:
    frame = Frame()
    frame.lines.append(Line(i18n.format_clock(view.now, lang), 1, 1, SMALL))
    x = WIDTH - 1
    if view.pending > 0:
        count = str(view.pending) if view.pending < 1000 else "999+"
        x -= text_width(count, SMALL)
        frame.lines.append(Line(count, x, 1, SMALL))
        x -= 10
        frame.icons.append(Icon("upload", x, 2, 9))
        x -= 3
    for flag, name in ((view.clock_warning, "clock"), (view.offline, "offline")):
        if flag:
            x -= 11
            frame.icons.append(Icon(name, x, 1, 11))
            x -= 3
    frame.icons.append(Icon("qr", 4, 18, 25))
    frame.lines += fit(
        [Block(i18n.text("ready.title", lang), (16, SMALL), bold=True, max_lines=2)],
        Box(34, 14, WIDTH - 35, 34),
    )
    frame.lines += fit([Block(i18n.text("ready.sub", lang))], Box(1, 49, WIDTH - 2, 14))
    return frame.shifted(*ready_shift(view.idle_seconds))


def _checking(view: views.Checking, lang: str) -> Frame:
    frame = Frame()
    key = _checking_text(view.kind)
    frame.icons.append(Icon("hourglass", (WIDTH - 16) // 2, 6, 16))
    frame.lines += fit(
        [
            Block(i18n.text(key, lang), (16, SMALL), bold=True),
            Block(i18n.text("checking.wait", lang)),
        ],
        Box(1, 24, WIDTH - 2, HEIGHT - 25),
    )
    return frame


def _checking_text(kind: RequestKind) -> str:
    match kind:
        case RequestKind.RECEIPT:
            return "checking.receipt"
        case RequestKind.CHARGE:
            return "checking.charge"
        case RequestKind.CANCEL:
            return "checking.cancel"
        case _:
            assert_never(kind)


def _still_charging(view: views.StillCharging, lang: str) -> Frame:
    frame = Frame()
    frame.icons.append(Icon("hourglass", (WIDTH - 14) // 2, 3, 14))
    blocks = [Block(i18n.text("still.charging", lang), (16, SMALL), bold=True)]
    if view.amount_cents is not None:
        blocks.append(Block(i18n.format_amount(view.amount_cents, lang), (16, SMALL), bold=True))
    blocks.append(Block(i18n.text("still.no_rescan", lang)))
    frame.lines += fit(blocks, Box(1, 19, WIDTH - 2, HEIGHT - 19))
    return frame


def _menu(view: views.ServiceMenu, lang: str) -> Frame:
    frame = Frame()
    header(frame, None, i18n.text("menu.title", lang))
    services = view.services
    if not services:
        frame.lines += fit([Block(i18n.text("menu.empty", lang), REASON_SIZES)], BODY)
        return frame
    selected = min(max(view.selected, 0), len(services) - 1)
    first = max(0, min(selected - 1, len(services) - MENU_ROWS))
    for row, service in enumerate(services[first : first + MENU_ROWS]):
        y = 15 + row * SMALL
        ink = 1
        if first + row == selected:
            frame.bars.append(Box(0, y, WIDTH, SMALL))
            ink = 0
        name = ellipsize(service.name, SMALL, False, WIDTH - 4)
        frame.lines.append(Line(name, 2, y, SMALL, ink=ink, cut=name != service.name))
        if not service.eligible:  # struck through: the benefit does not cover it
            frame.rules.append(Box(2, y + 6, text_width(name, SMALL), 1))
    y = HEIGHT - SMALL
    position = i18n.text("menu.position", lang, n=selected + 1, of=len(services))
    frame.lines.append(Line(position, 2, y, SMALL))
    price = i18n.format_amount(services[selected].price_cents, lang)
    frame.lines.append(Line(price, WIDTH - 2 - text_width(price, SMALL, True), y, SMALL, True))
    return frame


def _confirm_charge(view: views.ConfirmCharge, lang: str) -> Frame:
    frame = Frame()
    header(frame, None, i18n.text("confirm.charge", lang))
    frame.lines += fit(
        [
            Block(view.service.name, REASON_SIZES, bold=True, max_lines=2),
            Block(i18n.format_amount(view.service.price_cents, lang), AMOUNT_SIZES, bold=True),
        ],
        BODY,
    )
    return frame


def _cancel_confirm(view: views.CancelConfirm, lang: str) -> Frame:
    frame = Frame()
    header(frame, None, i18n.text("confirm.cancel", lang))
    blocks = [Block(i18n.format_amount(view.amount_cents, lang), AMOUNT_SIZES, bold=True)]
    if view.at is not None:
        blocks.append(Block(i18n.format_time(view.at, lang)))
    blocks.append(Block(i18n.text("confirm.keys", lang)))
    frame.lines += fit(blocks, BODY)
    return frame


def _alarm(view: views.Alarm, lang: str) -> Frame:
    frame = Frame()
    header(frame, "alert", i18n.text("head.alarm", lang))
    key = f"alarm.{view.kind}" if i18n.has(f"alarm.{view.kind}") else "alarm.other"
    blocks = [Block(i18n.text(key, lang), REASON_SIZES, bold=True, max_lines=2)]
    if view.salvage is not None:
        s = view.salvage
        lost = f"{s.lost}+" if s.more_lost else str(s.lost)
        salvaged = i18n.text("alarm.salvaged", lang, n=s.kept, lost=lost)
        blocks.append(Block(salvaged, (SMALL,), max_lines=2))
    elif view.detail:
        blocks.append(Block(view.detail, (SMALL,), max_lines=2))
    blocks.append(Block(i18n.text("alarm.call", lang)))
    frame.lines += fit(blocks, BODY)
    return frame


def _tech(view: views.TechInfo, lang: str) -> Frame:
    frame = Frame()
    status = i18n.text("tech.online" if view.online else "tech.offline", lang)
    header(frame, None, view.device_id, right=status)
    alarms = []
    if view.quarantined > 0:
        quarantined = i18n.text("tech.quarantined", lang, n=view.quarantined)
        alarms.append(Block(f"! {quarantined}", bold=True, max_lines=2, align="left"))
    if view.offline_off:
        off = i18n.text("tech.offline_off", lang, n=view.conflicts_24h)
        alarms.append(Block(f"! {off}", bold=True, max_lines=2, align="left"))
    if view.journal_salvaged >= 0:
        salvaged = i18n.text("tech.salvaged", lang, n=view.journal_salvaged, lost=view.journal_lost)
        alarms.append(Block(f"! {salvaged}", bold=True, max_lines=2, align="left"))
    info = {
        "ip": Block(i18n.text("tech.ip", lang, ip=view.ip_address), align="left"),
        "version": Block(i18n.text("tech.version", lang, v=view.version), align="left"),
        "pending": Block(i18n.text("tech.pending", lang, n=view.pending), align="left"),
    }
    if view.venue:
        info["venue"] = Block(view.venue, align="left")
    box = Box(2, 14, WIDTH - 4, HEIGHT - 14)
    # alarm lines first; then as much of the rest as fits, the address before the others
    priority = [k for k in ("ip", "pending", "version", "venue") if k in info]
    for keep in range(len(priority), -1, -1):
        blocks = alarms + [b for k, b in info.items() if k in priority[:keep]]
        lines = fit(blocks, box) if blocks else []
        if not any(ln.cut for ln in lines) and sum(ln.size for ln in lines) <= box.h:
            break
    frame.lines += lines
    return frame


def _out_of_service(view: views.OutOfService, lang: str) -> Frame:
    frame = Frame()
    frame.icons.append(Icon("alert", (WIDTH - 16) // 2, 4, 16))
    blocks = [Block(i18n.text("out_of_service", lang), (20, 16, SMALL), bold=True, max_lines=2)]
    if view.message:
        blocks.append(Block(view.message, (SMALL,), max_lines=2))
    frame.lines += fit(blocks, Box(1, 22, WIDTH - 2, HEIGHT - 23))
    return frame
