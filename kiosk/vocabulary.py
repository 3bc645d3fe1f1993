"""The kiosk's words: token kinds, request kinds and states, outcome words, and their rules.

Every word the firmware stores, sends or shows is a member of one of these
enums; they are :class:`~enum.StrEnum`, so they compare equal to, and are
stored in SQLite as, the plain strings of the contracts
(``../shared/spec/backend-api.md``, ``../shared/spec/kiosk-interface.md``).

The rules that turn one word into another live beside the words:

- :func:`check_word`, :func:`charge_word`, :func:`cancel_word` and
  :func:`answer_word`: the backend's status word -> the outcome word;
- :data:`ACCEPTED`: the outcomes that count as a payment accepted at the counter;
- :data:`ACCEPTED_HERE`: receipt outcomes that mean this kiosk accepted the receipt;
- :data:`OFFLINE`: outcomes of a receipt accepted without the backend;
- :func:`resolved_word`: what an outcome shown earlier becomes once the backend's
  answer arrives (an offline acceptance the backend does not confirm with ``checked``
  is a ``conflict``);
- :data:`OPEN_STATES`: journaled requests still owed an answer.

Dispatch on these enums uses ``match`` with :func:`typing.assert_never`, so mypy
names every place a new member must reach.
"""

from __future__ import annotations

from enum import StrEnum
from typing import assert_never

__all__ = [
    "ACCEPTED",
    "ACCEPTED_HERE",
    "OFFLINE",
    "OPEN_STATES",
    "AmountCheck",
    "CancelStatus",
    "ChargeStatus",
    "CheckStatus",
    "RequestKind",
    "RequestState",
    "TokenKind",
    "Word",
    "answer_word",
    "cancel_word",
    "charge_word",
    "check_word",
    "resolved_reason",
    "resolved_word",
]


class TokenKind(StrEnum):
    """What a scanned, verified token is (its JWS ``typ``)."""

    RECEIPT = "receipt"
    PAYCODE = "paycode"


class RequestKind(StrEnum):
    """The POSTs the kiosk journals and sends; also the ``kind`` of an outcome row."""

    RECEIPT = "receipt"
    CHARGE = "charge"
    CANCEL = "cancel"


class RequestState(StrEnum):
    """A journaled request: may be in flight, answered, or given up before delivery.

    ``quarantined``: still waiting for its answer, but it failed so often that it
    is only retried rarely (``journal.quarantine_retry``); the others go on.
    """

    PENDING = "pending"
    DONE = "done"
    VOID = "void"
    QUARANTINED = "quarantined"


OPEN_STATES: frozenset[RequestState] = frozenset({RequestState.PENDING, RequestState.QUARANTINED})
"""Requests still owed an answer by the backend (re-sent verbatim until they get one)."""


class Word(StrEnum):
    """The outcome words of the interface contract, shown at the counter and in history."""

    CHECKED = "checked"
    CHECKED_OFFLINE = "checked_offline"
    CHARGED = "charged"
    ALREADY_CHECKED = "already_checked"
    CANCELLED = "cancelled"
    WRONG_VENUE = "wrong_venue"
    INVALID = "invalid"
    NOT_ELIGIBLE = "not_eligible"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    PAYCODE_USED = "paycode_used"
    PAYCODE_EXPIRED = "paycode_expired"
    NEEDS_NETWORK = "needs_network"
    CONFLICT = "conflict"


class AmountCheck(StrEnum):
    """A checked receipt's amount against the venue's price list (history's ``amount_check``)."""

    OK = "ok"  # one eligible service, or two, cost exactly the amount
    MISMATCH = "mismatch"  # no eligible service nor sum of two: the staff checks the amount


class CheckStatus(StrEnum):
    """Status words of POST /v1/receipts/check."""

    CHECKED = "checked"
    ALREADY_CHECKED = "already_checked"
    CANCELLED = "cancelled"
    WRONG_VENUE = "wrong_venue"
    INVALID = "invalid"


class ChargeStatus(StrEnum):
    """Status words of POST /v1/charges."""

    CHARGED = "charged"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    PAYCODE_USED = "paycode_used"
    PAYCODE_EXPIRED = "paycode_expired"
    NOT_ELIGIBLE = "not_eligible"
    INVALID = "invalid"


class CancelStatus(StrEnum):
    """Status words of POST /v1/transactions/{tx}/cancel."""

    CANCELLED = "cancelled"
    NOT_CANCELLABLE = "not_cancellable"
    NOT_FOUND = "not_found"


ACCEPTED: frozenset[Word] = frozenset({Word.CHECKED, Word.CHECKED_OFFLINE, Word.CHARGED})
"""A payment accepted at the counter (what cancel-last may cancel)."""

ACCEPTED_HERE: frozenset[Word] = frozenset({Word.CHECKED, Word.CHECKED_OFFLINE, Word.CONFLICT})
"""Receipt outcomes meaning this kiosk accepted the receipt (a rescan is ``already_checked``)."""

OFFLINE: frozenset[Word] = frozenset({Word.CHECKED_OFFLINE, Word.CONFLICT})
"""Receipts accepted without the backend (``conflict``: one the backend had already checked)."""


def check_word(status: str) -> Word:
    """The outcome word of a receipt check answer; anything unknown is ``invalid``."""
    try:
        return Word(CheckStatus(status).value)
    except ValueError:
        return Word.INVALID


def charge_word(status: str) -> Word:
    """The outcome word of a charge answer; anything unknown is ``invalid``."""
    try:
        return Word(ChargeStatus(status).value)
    except ValueError:
        return Word.INVALID


def cancel_word(status: str) -> Word:
    """The outcome word of a cancel answer: ``cancelled`` or ``invalid``."""
    return Word.CANCELLED if status == CancelStatus.CANCELLED else Word.INVALID


def answer_word(kind: RequestKind, status: str) -> Word:
    """The outcome word for the backend's *status* to a request of *kind*."""
    match kind:
        case RequestKind.RECEIPT:
            return check_word(status)
        case RequestKind.CHARGE:
            return charge_word(status)
        case RequestKind.CANCEL:
            return cancel_word(status)
        case _:
            assert_never(kind)


def resolved_word(shown: Word, answer: Word) -> Word:
    """What an outcome row shown as *shown* becomes when the backend answers *answer*.

    An offline acceptance keeps its word only when the backend confirms it with
    ``checked``; any other final answer (``already_checked``, ``cancelled``,
    ``invalid``, ``wrong_venue``) makes it a ``conflict``, with *answer* as its
    reason (see :func:`resolved_reason`). Any other row (a refusal shown while the
    answer was unknown) takes the backend's word.
    """
    if shown == Word.CHECKED_OFFLINE:
        return shown if answer == Word.CHECKED else Word.CONFLICT
    return answer


def resolved_reason(shown: Word, answer: Word, reason: str) -> str:
    """The reason kept with a row that :func:`resolved_word` resolved: a conflict
    names the backend's word; other rows keep theirs."""
    if resolved_word(shown, answer) == Word.CONFLICT and shown != Word.CONFLICT:
        return str(answer)
    return reason
