"""The result screen for an :class:`~kiosk.views.Outcome`: accepted or refused, and why.

Accepted screens put the amount large under a lit "HYVÄKSYTTY"-style bar with a
check mark; refusals put a short reason under a "HYLÄTTY" bar with a cross.
The screen is the word's (:func:`kiosk.vocabulary.meaning`). Reasons the screen
does not know show the word's generic text, so a new reason from the engine or
backend never breaks the display; a new word is named by mypy here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from kiosk.screens import i18n
from kiosk.screens.layout import (
    ELLIPSIS,
    SMALL,
    WIDTH,
    Block,
    Box,
    Frame,
    Line,
    ellipsize,
    fit,
    header,
    text_width,
)
from kiosk.views import AmountMatch, Outcome
from kiosk.vocabulary import ResultScreen, Word, meaning

AMOUNT_SIZES = (32, 28, 24, 20, 18, 16)
REASON_SIZES = (16, SMALL)
HEAD = 16  # result words are drawn at 16 px on a 16-px lit bar
BODY = Box(1, HEAD, WIDTH - 2, 64 - HEAD)

# reasons that replace the generic "invalid code" text
INVALID_REASONS = frozenset(
    {"not_smartum", "expired", "not_same_day", "already_cancelled", "not_found"}
)
# reasons shown as an extra line under any refusal (offline limits, storage faults)
DETAIL_REASONS = frozenset(
    {
        "limit_amount",
        "limit_total",
        "limit_count",
        "stale_sync",
        "conflicts",
        "journal",
        "disk_full",
    }
)


def compose_result(outcome: Outcome, lang: str) -> Frame:
    """The frame for *outcome* in *lang*. Raises ValueError for an unknown language."""
    i18n.check_language(lang)
    screen = meaning(outcome.word).screen
    match screen:
        case ResultScreen.RECEIPT_ACCEPTED:
            return _receipt_accepted(outcome, lang)
        case ResultScreen.CHARGED:
            details = [outcome.service_name] if outcome.service_name else []
            return _accepted("head.charged", outcome, lang, details, detail_lines=2)
        case ResultScreen.CANCELLED if outcome.accepted:
            when = _when("cancelled_at", outcome, lang)
            return _accepted("head.cancelled", outcome, lang, [when])
        case ResultScreen.NOTICE:
            return _message(
                "alert",
                "head.notice",
                lang,
                [i18n.text(f"word.{outcome.word}", lang)],
                [i18n.text("conflict.note", lang)],
            )
        case ResultScreen.CANCELLED | ResultScreen.REFUSED:
            return _refused(outcome, lang)
        case _:
            assert_never(screen)


def _receipt_accepted(outcome: Outcome, lang: str) -> Frame:
    match = outcome.amount_match
    if match is not None and match.services:
        if match.matched:
            return _amount_matched(outcome, match, lang)
        return _amount_mismatch(outcome, match, lang)
    if meaning(outcome.word).offline:
        details = [outcome.venue_name, i18n.text("checked_offline", lang)]
        return _accepted("head.accepted", outcome, lang, details, right_icon="offline")
    details = [outcome.venue_name, _when("paid_at", outcome, lang)]
    return _accepted("head.accepted", outcome, lang, details)


def _accepted(
    head: str,
    outcome: Outcome,
    lang: str,
    details: list[str],
    *,
    right_icon: str | None = None,
    detail_lines: int = 1,
) -> Frame:
    frame = Frame()
    header(frame, "check", i18n.text(head, lang), size=HEAD, right_icon=right_icon)
    blocks = []
    if outcome.amount_cents is not None:
        amount = i18n.format_amount(outcome.amount_cents, lang)
        blocks.append(Block(amount, AMOUNT_SIZES, bold=True))
    blocks += [Block(d, max_lines=detail_lines) for d in details if d]
    frame.lines += fit(blocks, BODY)
    return frame


def _when(key: str, outcome: Outcome, lang: str) -> str:
    return i18n.text(key, lang, time=i18n.format_time(outcome.at, lang)) if outcome.at else ""


def _refused(outcome: Outcome, lang: str) -> Frame:
    main, details = _refusal_texts(outcome, lang)
    if outcome.reason in DETAIL_REASONS:
        details.append(i18n.text(f"reason.{outcome.reason}", lang))
    if outcome.told_at is not None and outcome.word != Word.ALREADY_CHECKED:
        # answered from the journal: when the kiosk was told (already_checked shows its time)
        details.append(i18n.text("told_at", lang, time=i18n.format_time(outcome.told_at, lang)))
    return _message("cross", "head.refused", lang, [main], details)


def _refusal_texts(outcome: Outcome, lang: str) -> tuple[str, list[str]]:
    """The main reason line and the detail lines for a refusal."""
    word, reason = outcome.word, outcome.reason
    if word == Word.INVALID and reason in INVALID_REASONS:
        return i18n.text(f"reason.{reason}", lang), []
    main = i18n.text(f"word.{word}", lang)
    match word:
        case Word.ALREADY_CHECKED:
            when = i18n.format_time(outcome.checked_at, lang) if outcome.checked_at else ""
            by = outcome.checked_by or ""
            if when and by:
                return main, [i18n.text("already_checked.when", lang, time=when, by=by)]
            return main, [t for t in (when, by) if t]
        case Word.WRONG_VENUE:
            return main, [outcome.venue_name] if outcome.venue_name else []
        case Word.NOT_ELIGIBLE:
            return main, [outcome.service_name] if outcome.service_name else []
        case Word.INSUFFICIENT_FUNDS if outcome.balance_cents is not None:
            balance = i18n.format_amount(outcome.balance_cents, lang)
            return main, [i18n.text("balance", lang, amount=balance)]
        case Word.PAYCODE_EXPIRED:
            return main, [i18n.text("new_code", lang)]
        case Word.NEEDS_NETWORK if reason not in DETAIL_REASONS:
            return main, [i18n.text("try_again", lang)]
        case (
            Word.CHECKED
            | Word.CHECKED_OFFLINE
            | Word.CHARGED
            | Word.CANCELLED
            | Word.INVALID
            | Word.INSUFFICIENT_FUNDS
            | Word.PAYCODE_USED
            | Word.NEEDS_NETWORK
            | Word.CONFLICT
        ):
            return main, []
        case _:
            assert_never(word)


def _message(icon: str, head: str, lang: str, main: list[str], details: list[str]) -> Frame:
    frame = Frame()
    header(frame, icon, i18n.text(head, lang), size=HEAD)
    blocks = [Block(m, REASON_SIZES, bold=True, max_lines=2) for m in main]
    blocks += [Block(d, (SMALL,), max_lines=2) for d in details if d]
    frame.lines += fit(blocks, BODY)
    return frame


# --- the amount against the price list ---------------------------------------------------


def _amount_matched(outcome: Outcome, match: AmountMatch, lang: str) -> Frame:
    """Accepted, with the service(s) the amount pays for instead of the studio's name."""
    offline = meaning(outcome.word).offline
    frame = Frame()
    header(
        frame,
        "check",
        i18n.text("head.accepted", lang),
        size=HEAD,
        right_icon="offline" if offline else None,
    )
    blocks: list[Block] = []
    if outcome.amount_cents is not None:
        amount = i18n.format_amount(outcome.amount_cents, lang)
        blocks.append(Block(amount, AMOUNT_SIZES, bold=True))
    first, *rest = match.services
    if not rest:
        blocks.append(Block(first.name, max_lines=2))
    elif rest[0] == first:
        blocks.append(Block(i18n.text("amount.twice", lang, name=first.name), max_lines=2))
    else:  # two services, one line each, shortened in the middle to keep "60 min"
        blocks += [Block(first.name), Block(f"+ {rest[0].name}")]
    extra = i18n.text("checked_offline", lang) if offline else _when("paid_at", outcome, lang)
    frame.lines += _fit_optional(blocks, [Block(extra)] if extra else [], BODY)
    return frame


def _amount_mismatch(outcome: Outcome, match: AmountMatch, lang: str) -> Frame:
    """Checked, but the amount matches no service: the nearest one and the difference."""
    frame = Frame()
    right = "offline" if meaning(outcome.word).offline else None
    top = header(frame, "alert", i18n.text("head.check_amount", lang), right_icon=right)
    nearest = match.services[0]
    diff = _money(match.difference_cents, lang)
    diff = f"+{diff}" if match.difference_cents > 0 else diff
    price = _money(nearest.price_cents, lang)
    paid = []
    if outcome.amount_cents is not None:
        text = i18n.text("amount.paid", lang, amount=_money(outcome.amount_cents, lang))
        paid.append(Block(text, (16, SMALL), bold=True))
    difference = Block(i18n.text("amount.difference", lang, diff=diff), bold=True)
    box = Box(1, top, WIDTH - 2, 64 - top)
    service = i18n.text("amount.nearest", lang, name=nearest.name, price=price)
    lines = fit([*paid, Block(service, max_lines=2), difference], box)
    if any(ln.cut for ln in lines):  # the price and difference matter more than a long name
        room = box.w - text_width(f": {price}", SMALL)
        name = _middle(Block(nearest.name), room).text
        service = i18n.text("amount.nearest", lang, name=name, price=price)
        lines = [
            replace(ln, cut=True) if name in ln.text else ln
            for ln in fit([*paid, Block(service), difference], box)
        ]
    frame.lines += lines
    return frame


def _money(cents: int, lang: str) -> str:
    """An amount that never wraps between its number and its currency sign."""
    return i18n.format_amount(cents, lang).replace(" ", "\u00a0")


def _fit_optional(blocks: list[Block], optional: list[Block], box: Box) -> list[Line]:
    """*blocks* and *optional* when all fit uncut, else *blocks* alone.

    Single-line blocks too wide for *box* are shortened in the middle (marked cut).
    """
    shortened = [_middle(b, box.w) for b in blocks]
    lines = fit(shortened + optional, box)
    if any(ln.cut for ln in lines) and optional:
        lines = fit(shortened, box)
    cut = {s.text for s, b in zip(shortened, blocks, strict=True) if s.text != b.text}
    return [replace(ln, cut=True) if ln.text in cut else ln for ln in lines]


def _middle(block: Block, width: int) -> Block:
    """*block* with its text cut in the middle when one line is too narrow for it."""
    size = block.sizes[-1]
    text = block.text
    if block.max_lines > 1 or text_width(text, size, block.bold) <= width:
        return block
    words = text.split(" ")
    tail = " ".join(words[-2:]) if len(words) > 2 else ""
    room = width - text_width(f"{ELLIPSIS} {tail}", size, block.bold)
    if not tail or room < width // 3:
        return replace(block, text=ellipsize(text, size, block.bold, width))
    head = " ".join(words[:-2])
    cut = len(head)
    while cut > 1 and text_width(head[:cut].rstrip() + ELLIPSIS, size, block.bold) > room:
        cut -= 1
    return replace(block, text=f"{head[:cut].rstrip()}{ELLIPSIS} {tail}")
