"""The staff's day report on the 128x64 panel: four rows a page, amounts right-aligned.

Each row is a label with its count on the left and the amount on the right, in
euros without the sign (the title carries "€"), so that a label, a count and
"12 345,00" fit one 12-px row. A label too long for the room left is shortened
with "…"; an amount never is. The page number is at the right of the title bar.
"""

from __future__ import annotations

from kiosk import views
from kiosk.day_report import Count
from kiosk.screens import i18n
from kiosk.screens.layout import (
    ELLIPSIS,
    SMALL,
    WIDTH,
    Frame,
    Line,
    ellipsize,
    header,
    text_width,
)

ROW = SMALL
GAP = 6  # pixels between a label and its amount


def compose_report(view: views.DayReport, lang: str) -> Frame:
    """The frame of *view*'s page in *lang* (a page past the last shows the last)."""
    frame = Frame()
    title = i18n.text("report.title", lang, day=i18n.format_day(view.day, lang))
    pages = view.pages
    page = min(max(view.page, 0), pages - 1)
    top = header(frame, None, title, right=f"{page + 1}/{pages}")
    for index, (label, count, amount, bold) in enumerate(_page_rows(view, page, lang)):
        y = top + 1 + index * ROW
        amount_w = text_width(amount, ROW, bold)
        tail = f" {count}" if count else ""
        room = WIDTH - 4 - (amount_w + GAP if amount else 0) - text_width(tail, ROW, bold)
        fitted = _shortened(label, bold, room)
        frame.lines.append(Line(fitted + tail, 2, y, ROW, bold, cut=fitted != label))
        if amount:
            frame.lines.append(Line(amount, WIDTH - 2 - amount_w, y, ROW, bold))
    return frame


def _shortened(text: str, bold: bool, width: int) -> str:
    """*text*, or when too wide its start and its last two words ("Klassinen… 60 min"),
    or for two services the start of each ("Klassinen… + Jalkahie…")."""
    if text_width(text, ROW, bold) <= width:
        return text
    parts = text.split(" + ")
    if len(parts) == 2:  # two services the amount paid for: a start of each
        half = (width - text_width(" + ", ROW, bold)) // 2
        return " + ".join(ellipsize(p, ROW, bold, half) for p in parts)
    words = text.split(" ")
    tail = " ".join(words[-2:])
    if len(words) > 2:
        head_room = width - text_width(f"{ELLIPSIS} {tail}", ROW, bold)
        head = ellipsize(" ".join(words[:-2]), ROW, bold, head_room).rstrip(ELLIPSIS).rstrip()
        if head and head_room > 0:
            return f"{head}{ELLIPSIS} {tail}"
    return ellipsize(text, ROW, bold, width)


Row = tuple[str, str, str, bool]  # label, count, amount, bold


def _page_rows(view: views.DayReport, page: int, lang: str) -> list[Row]:
    f = view.figures
    if page == 0:
        return [
            _row("report.receipts", f.receipts, lang),
            _row("report.charges", f.charges, lang),
            _row("report.cancels", f.cancels, lang, minus=True),
            (i18n.text("report.total", lang), "", _euros(f.total_cents, lang), True),
        ]
    if page == 1:
        return [
            _row("report.offline", f.offline, lang),
            _row("report.waiting", f.waiting_upload, lang),
            _row("report.conflicts", f.conflicts, lang),
            _row("report.late", f.late_answers, lang),
        ]
    entries = [*f.services, (i18n.text("report.unmatched", lang), f.unmatched)]
    first = (page - 2) * views.SERVICES_PER_PAGE
    rows: list[Row] = []
    for name, count in entries[first : first + views.SERVICES_PER_PAGE]:
        rows.append((name, "", "", True))
        number = i18n.text("report.count", lang, n=count.count)
        rows.append((f"  {number}", "", _euros(count.cents, lang), False))
    return rows


def _row(key: str, count: Count, lang: str, *, minus: bool = False) -> Row:
    cents = -count.cents if minus and count.cents else count.cents
    return i18n.text(key, lang), str(count.count), _euros(cents, lang), False


def _euros(cents: int, lang: str) -> str:
    """An amount without the currency sign: fi/sv ``"1 234,50"``, en ``"1,234.50"``."""
    return i18n.format_amount(cents, lang).replace("€", "").strip()
