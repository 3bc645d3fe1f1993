"""The result screen for an :class:`~kiosk.views.Outcome`: accepted or refused, and why.

Accepted screens put the amount large under a lit "HYVÄKSYTTY"-style bar with a
check mark; refusals put a short reason under a "HYLÄTTY" bar with a cross.
Reasons the screen does not know fall back to the word's generic text, so a new
reason from the engine or backend never breaks the display.
"""

from __future__ import annotations

from kiosk.screens import i18n
from kiosk.screens.layout import SMALL, WIDTH, Block, Box, Frame, fit, header
from kiosk.views import Outcome
from kiosk.vocabulary import RequestKind, Word

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
    {"limit_amount", "limit_total", "limit_count", "stale_sync", "journal", "disk_full"}
)


def compose_result(outcome: Outcome, lang: str) -> Frame:
    """The frame for *outcome* in *lang*. Raises ValueError for an unknown language."""
    i18n.check_language(lang)
    word = outcome.word
    if word in ("checked", "checked_offline"):
        return _receipt_accepted(outcome, lang)
    if word == "charged":
        details = [outcome.service_name] if outcome.service_name else []
        return _accepted("head.charged", outcome, lang, details, detail_lines=2)
    if word == Word.CANCELLED and outcome.kind == RequestKind.CANCEL:
        return _accepted("head.cancelled", outcome, lang, [_when("cancelled_at", outcome, lang)])
    if word == "conflict":
        return _message(
            "alert",
            "head.notice",
            lang,
            [i18n.text("word.conflict", lang)],
            [i18n.text("conflict.note", lang)],
        )
    return _refused(outcome, lang)


def _receipt_accepted(outcome: Outcome, lang: str) -> Frame:
    if outcome.word == Word.CHECKED_OFFLINE:
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
    return _message("cross", "head.refused", lang, [main], details)


def _refusal_texts(outcome: Outcome, lang: str) -> tuple[str, list[str]]:
    """The main reason line and the detail lines for a refusal."""
    word, reason = outcome.word, outcome.reason
    if word == "invalid" and reason in INVALID_REASONS:
        return i18n.text(f"reason.{reason}", lang), []
    main = i18n.text(f"word.{word}", lang)
    if word == "already_checked":
        when = i18n.format_time(outcome.checked_at, lang) if outcome.checked_at else ""
        by = outcome.checked_by or ""
        if when and by:
            return main, [i18n.text("already_checked.when", lang, time=when, by=by)]
        return main, [t for t in (when, by) if t]
    if word == "wrong_venue":
        return main, [outcome.venue_name] if outcome.venue_name else []
    if word == "not_eligible":
        return main, [outcome.service_name] if outcome.service_name else []
    if word == "insufficient_funds" and outcome.balance_cents is not None:
        balance = i18n.format_amount(outcome.balance_cents, lang)
        return main, [i18n.text("balance", lang, amount=balance)]
    if word == "paycode_expired":
        return main, [i18n.text("new_code", lang)]
    if word == "needs_network" and reason not in DETAIL_REASONS:
        return main, [i18n.text("try_again", lang)]
    return main, []


def _message(icon: str, head: str, lang: str, main: list[str], details: list[str]) -> Frame:
    frame = Frame()
    header(frame, icon, i18n.text(head, lang), size=HEAD)
    blocks = [Block(m, REASON_SIZES, bold=True, max_lines=2) for m in main]
    blocks += [Block(d, (SMALL,), max_lines=2) for d in details if d]
    frame.lines += fit(blocks, BODY)
    return frame
