"""The vocabulary's rules: backend status -> outcome word, accepted sets, conflicts."""

from __future__ import annotations

import pytest

from kiosk.views import Outcome
from kiosk.vocabulary import (
    ACCEPTED,
    ACCEPTED_HERE,
    OFFLINE,
    PAYMENT_KINDS,
    CancelStatus,
    ChargeStatus,
    CheckStatus,
    RequestKind,
    ResultScreen,
    Signal,
    TokenKind,
    Word,
    accepted,
    accepted_word,
    answer_word,
    meaning,
    money_sign,
    request_for,
    resolved_reason,
    resolved_word,
)


@pytest.mark.parametrize("status", list(CheckStatus))
def test_every_check_status_is_its_own_outcome_word(status: CheckStatus) -> None:
    assert answer_word(RequestKind.RECEIPT, status) == Word(status.value)


@pytest.mark.parametrize("status", list(ChargeStatus))
def test_every_charge_status_is_its_own_outcome_word(status: ChargeStatus) -> None:
    assert answer_word(RequestKind.CHARGE, status) == Word(status.value)


def test_cancel_answers_are_cancelled_or_invalid() -> None:
    assert answer_word(RequestKind.CANCEL, CancelStatus.CANCELLED) is Word.CANCELLED
    assert answer_word(RequestKind.CANCEL, CancelStatus.NOT_CANCELLABLE) is Word.INVALID
    assert answer_word(RequestKind.CANCEL, CancelStatus.NOT_FOUND) is Word.INVALID


@pytest.mark.parametrize("kind", list(RequestKind))
def test_an_unknown_status_is_invalid(kind: RequestKind) -> None:
    assert answer_word(kind, "gift_redeemed") is Word.INVALID
    # a charge word is not a receipt word and the other way round
    assert answer_word(RequestKind.RECEIPT, "charged") is Word.INVALID
    assert answer_word(RequestKind.CHARGE, "checked") is Word.INVALID


def test_the_accepted_sets() -> None:
    assert {Word.CHECKED, Word.CHECKED_OFFLINE, Word.CHARGED} == ACCEPTED
    assert {Word.CHECKED, Word.CHECKED_OFFLINE, Word.CONFLICT} == ACCEPTED_HERE
    assert {Word.CHECKED_OFFLINE, Word.CONFLICT} == OFFLINE


def test_offline_acceptance_checked_elsewhere_becomes_a_conflict() -> None:
    assert resolved_word(Word.CHECKED_OFFLINE, Word.ALREADY_CHECKED) is Word.CONFLICT
    assert resolved_word(Word.CHECKED_OFFLINE, Word.CHECKED) is Word.CHECKED_OFFLINE


def test_any_other_final_answer_to_an_offline_acceptance_is_a_conflict() -> None:
    for answer in (Word.CANCELLED, Word.INVALID, Word.WRONG_VENUE, Word.ALREADY_CHECKED):
        assert resolved_word(Word.CHECKED_OFFLINE, answer) is Word.CONFLICT, answer
        assert resolved_reason(Word.CHECKED_OFFLINE, answer, "") == answer.value
    assert resolved_reason(Word.CHECKED_OFFLINE, Word.CHECKED, "") == ""
    assert resolved_reason(Word.NEEDS_NETWORK, Word.CHECKED, "offline") == "offline"
    assert resolved_word(Word.NEEDS_NETWORK, Word.CHARGED) is Word.CHARGED
    assert resolved_word(Word.NEEDS_NETWORK, Word.ALREADY_CHECKED) is Word.ALREADY_CHECKED


def test_outcome_types_its_words_and_refuses_unknown_ones() -> None:
    outcome = Outcome("checked", "receipt")  # type: ignore[arg-type]
    assert outcome.word is Word.CHECKED and outcome.kind is RequestKind.RECEIPT
    assert outcome.accepted
    assert Outcome(Word.CANCELLED, RequestKind.CANCEL).accepted
    assert not Outcome(Word.CANCELLED, RequestKind.RECEIPT).accepted
    with pytest.raises(ValueError, match="unknown outcome word"):
        Outcome("gift_redeemed", "receipt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown outcome kind"):
        Outcome("checked", "voucher")  # type: ignore[arg-type]


def test_every_signal_has_a_pattern_and_every_pattern_a_signal() -> None:
    from hardware.signals import PATTERNS

    assert set(PATTERNS) == set(Signal)


@pytest.mark.parametrize("word", list(Word))
def test_each_word_means_one_thing(word: Word) -> None:
    m = meaning(word)
    assert (word in ACCEPTED) is m.payment
    assert not (m.payment and m.cancels)  # a payment taken is not a cancel gone through
    if m.payment or m.cancels:
        assert m.signal is not Signal.REFUSED
    else:
        assert m.signal is Signal.REFUSED and not accepted(word, RequestKind.CANCEL)
    if m.screen in (ResultScreen.REFUSED, ResultScreen.CANCELLED, ResultScreen.NOTICE):
        from kiosk.screens import i18n

        assert i18n.has(f"word.{word}"), word


def test_the_payment_kinds_are_what_a_cancel_looks_up() -> None:
    assert PAYMENT_KINDS == (RequestKind.RECEIPT, RequestKind.CHARGE)
    assert [request_for(k) for k in TokenKind] == [RequestKind.RECEIPT, RequestKind.CHARGE]


def test_a_paycode_that_fails_its_checks_is_refused_as_a_charge() -> None:
    from kiosk.flows.outcomes import UNREADABLE_KIND, refusal
    from kiosk.tokens import Unrecognised

    bad = Unrecognised("bad_signature", kind=TokenKind.PAYCODE)
    assert refusal(bad) == (Word.INVALID, RequestKind.CHARGE)
    expired = Unrecognised("expired", kind=TokenKind.PAYCODE)
    assert refusal(expired) == (Word.PAYCODE_EXPIRED, RequestKind.CHARGE)
    assert refusal(Unrecognised("bad_signature", kind=TokenKind.RECEIPT))[1] is RequestKind.RECEIPT
    assert refusal(Unrecognised("not_smartum")) == (Word.INVALID, UNREADABLE_KIND)


@pytest.mark.parametrize("kind", list(RequestKind))
def test_a_rows_money_and_its_acceptance_are_one_rule(kind: RequestKind) -> None:
    # What the day report counts (kiosk.journal.money) and what the counter shows as
    # accepted come from the same words: a payment taken, or a cancel gone through.
    for word in Word:
        taken = word in ACCEPTED and kind in PAYMENT_KINDS
        given_back = word is Word.CANCELLED and kind is RequestKind.CANCEL
        assert money_sign(word, kind) == (1 if taken else -1 if given_back else 0), word
        assert accepted(word, kind) is (taken or given_back), word
    assert money_sign(accepted_word(kind), kind) == (1 if kind in PAYMENT_KINDS else -1)
    assert [accepted_word(k) for k in RequestKind] == [Word.CHECKED, Word.CHARGED, Word.CANCELLED]
