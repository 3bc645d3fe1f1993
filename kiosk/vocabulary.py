"""The kiosk's words: token kinds, request kinds and states, outcome words, and their rules.

Every word the firmware stores, sends or shows is a member of one of these
enums; they are :class:`~enum.StrEnum`, so they compare equal to, and are
stored in SQLite as, the plain strings of the contracts
(``../shared/spec/backend-api.md``, ``../shared/spec/kiosk-interface.md``).

What each member means to the counter lives beside it, once, as a ``match``
over the whole enum ending in :func:`~typing.assert_never`; adding a member
makes mypy name every such function; other modules decide on these enums the same
way, and the guard test (``tests/kiosk/test_exhaustive.py``) adds a member to each
enum and checks that mypy names every dispatch site it lists:

- :func:`meaning`: an outcome word's meaning: a payment accepted at the counter
  (counted as money, cancel-last may cancel it), a cancel gone through, a
  receipt accepted offline or here, its result screen and its signal;
  :data:`ACCEPTED`, :data:`ACCEPTED_HERE` and :data:`OFFLINE` are read from it;
- :func:`is_payment`: the request kinds that take a payment (a cancel looks up
  the payment it cancels among them); with :func:`meaning` it makes
  :func:`money_sign` (what a row does to the day's money) and :func:`accepted`;
- :func:`accepted_word`: the word of a request of each kind that the backend accepted;
- :func:`request_for`: the request a verified token of each kind makes;
- :func:`check_word`, :func:`charge_word`, :func:`cancel_word` and
  :func:`answer_word`: the backend's status word -> the outcome word;
- :func:`resolved_word`: what an outcome shown earlier becomes once the backend's
  answer arrives (an offline acceptance the backend does not confirm with ``checked``
  is a ``conflict``);
- :data:`OPEN_STATES`: journaled requests still owed an answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import assert_never

__all__ = [
    "ACCEPTED",
    "ACCEPTED_HERE",
    "OFFLINE",
    "OPEN_STATES",
    "PAYMENT_KINDS",
    "AmountCheck",
    "CancelStatus",
    "ChargeStatus",
    "CheckStatus",
    "RequestKind",
    "RequestState",
    "ResultScreen",
    "Signal",
    "TokenKind",
    "Word",
    "WordMeaning",
    "accepted",
    "accepted_word",
    "answer_word",
    "cancel_word",
    "charge_word",
    "check_word",
    "is_payment",
    "meaning",
    "money_sign",
    "request_for",
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


def request_for(kind: TokenKind) -> RequestKind:
    """The request a verified token of *kind* makes (and the kind of its refusals)."""
    match kind:
        case TokenKind.RECEIPT:
            return RequestKind.RECEIPT
        case TokenKind.PAYCODE:
            return RequestKind.CHARGE
        case _:
            assert_never(kind)


def is_payment(kind: RequestKind) -> bool:
    """True for a request that takes a payment (what a cancel may cancel)."""
    match kind:
        case RequestKind.RECEIPT | RequestKind.CHARGE:
            return True
        case RequestKind.CANCEL:
            return False
        case _:
            assert_never(kind)


PAYMENT_KINDS: tuple[RequestKind, ...] = tuple(k for k in RequestKind if is_payment(k))
"""The request kinds that take a payment, in the enum's order."""


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


class ResultScreen(StrEnum):
    """Which result screen an outcome word gets (``kiosk.screens.results``)."""

    RECEIPT_ACCEPTED = "receipt_accepted"  # the amount, the studio or the services it pays for
    CHARGED = "charged"  # the amount and the service charged
    CANCELLED = "cancelled"  # a cancel gone through; refused for any other request
    NOTICE = "notice"  # accepted earlier, but the backend disagrees
    REFUSED = "refused"  # a cross and the reason


class Signal(StrEnum):
    """The light and sound patterns of the indicators (``hardware.signals.PATTERNS``)."""

    SCAN = "scan"
    ACCEPTED = "accepted"
    ACCEPTED_OFFLINE = "accepted_offline"
    CHECK_AMOUNT = "check_amount"
    REFUSED = "refused"
    ERROR = "error"


@dataclass(frozen=True)
class WordMeaning:
    """What one outcome word means to the counter.

    - ``payment``: a payment accepted at the counter: counted as money in the day
      report, what cancel-last may cancel, shown with a check mark;
    - ``cancels``: the word of a cancel gone through (for a cancel request; for any
      other request it is a refusal: the payment was cancelled);
    - ``offline``: a receipt accepted without the backend (history's ``offline``);
    - ``accepted_here``: a receipt this kiosk accepted: a rescan is ``already_checked``;
    - ``screen``: the result screen; ``signal``: the indicators when it is accepted
      (a refusal always sounds ``refused``).
    """

    screen: ResultScreen
    signal: Signal = Signal.REFUSED
    payment: bool = False
    cancels: bool = False
    offline: bool = False
    accepted_here: bool = False


def meaning(word: Word) -> WordMeaning:
    """What *word* means to the counter."""
    match word:
        case Word.CHECKED:
            return WordMeaning(
                ResultScreen.RECEIPT_ACCEPTED, Signal.ACCEPTED, payment=True, accepted_here=True
            )
        case Word.CHECKED_OFFLINE:
            return WordMeaning(
                ResultScreen.RECEIPT_ACCEPTED,
                Signal.ACCEPTED_OFFLINE,
                payment=True,
                offline=True,
                accepted_here=True,
            )
        case Word.CHARGED:
            return WordMeaning(ResultScreen.CHARGED, Signal.ACCEPTED, payment=True)
        case Word.CANCELLED:
            return WordMeaning(ResultScreen.CANCELLED, Signal.ACCEPTED, cancels=True)
        case Word.CONFLICT:
            return WordMeaning(ResultScreen.NOTICE, offline=True, accepted_here=True)
        case (
            Word.ALREADY_CHECKED
            | Word.WRONG_VENUE
            | Word.INVALID
            | Word.NOT_ELIGIBLE
            | Word.INSUFFICIENT_FUNDS
            | Word.PAYCODE_USED
            | Word.PAYCODE_EXPIRED
            | Word.NEEDS_NETWORK
        ):
            return WordMeaning(ResultScreen.REFUSED)
        case _:
            assert_never(word)


def money_sign(word: Word, kind: RequestKind) -> int:
    """What a row of *word* for a request of *kind* does to the day's money: ``1`` a
    payment accepted at the counter (its amount is taken), ``-1`` a cancel gone through
    (its amount is given back), ``0`` nothing (a refusal; a conflict: the money was
    counted where the receipt was checked first)."""
    m = meaning(word)
    if is_payment(kind):
        return 1 if m.payment else 0
    return -1 if m.cancels else 0


def accepted(word: Word, kind: RequestKind) -> bool:
    """True for a payment accepted at the counter, or a cancel that went through."""
    return money_sign(word, kind) != 0


def accepted_word(kind: RequestKind) -> Word:
    """The word of a request of *kind* that the backend accepted (its row of money)."""
    match kind:
        case RequestKind.RECEIPT:
            return Word.CHECKED
        case RequestKind.CHARGE:
            return Word.CHARGED
        case RequestKind.CANCEL:
            return Word.CANCELLED
        case _:
            assert_never(kind)


ACCEPTED: frozenset[Word] = frozenset(w for w in Word if meaning(w).payment)
"""A payment accepted at the counter (what cancel-last may cancel)."""

ACCEPTED_HERE: frozenset[Word] = frozenset(w for w in Word if meaning(w).accepted_here)
"""Receipt outcomes meaning this kiosk accepted the receipt (a rescan is ``already_checked``)."""

OFFLINE: frozenset[Word] = frozenset(w for w in Word if meaning(w).offline)
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
