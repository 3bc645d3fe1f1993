"""The day report's figures from journal rows, and a period the journal no longer holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.day_report import Count, IncompletePeriod, figures, period_rows
from kiosk.journal import Journal
from kiosk.vocabulary import AmountCheck, RequestKind, Word

NOW = 1_800_000_000.0


def test_one_row_of_money_per_transaction_and_what_each_figure_holds(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as j:
        j.record(
            RequestKind.RECEIPT,
            Word.CHECKED,
            tx="tx_a",
            amount_cents=6500,
            now=NOW,
            shown_accepted=True,
            service="Classic",
            amount_check=AmountCheck.OK,
        )
        j.record(RequestKind.RECEIPT, Word.ALREADY_CHECKED, tx="tx_a", amount_cents=6500, now=NOW)
        j.record(
            RequestKind.RECEIPT,
            Word.CHECKED_OFFLINE,
            tx="tx_b",
            amount_cents=5500,
            now=NOW,
            synced=False,
            shown_accepted=True,
            service="Sports",
            amount_check=AmountCheck.OK,
        )
        j.record(
            RequestKind.RECEIPT,
            Word.CHECKED,
            tx="tx_c",
            amount_cents=7000,
            now=NOW,
            reason="limit_amount",
        )  # a late answer: shown needs_network
        j.record(
            RequestKind.RECEIPT,
            Word.CONFLICT,
            tx="tx_d",
            amount_cents=3000,
            now=NOW,
            shown_accepted=True,
            reason="already_checked",
        )
        j.record(
            RequestKind.CHARGE,
            Word.CHARGED,
            tx="tx_e",
            amount_cents=5500,
            now=NOW,
            shown_accepted=True,
            service="Sports",
        )
        j.record(RequestKind.CANCEL, Word.CANCELLED, tx="tx_e", amount_cents=5500, now=NOW)
        j.record(
            RequestKind.RECEIPT,
            Word.CANCELLED,
            tx="tx_f",
            amount_cents=900,
            now=NOW,
            reason="receipt",
        )  # a check answered "cancelled": no money
        j.record(RequestKind.RECEIPT, Word.CHECKED, tx="tx_old", amount_cents=100, now=NOW - 9)
        rows = period_rows(j, NOW - 1, now=NOW, retention_days=90)
    day = figures(rows)
    assert day.receipts == Count(3, 6500 + 5500 + 7000)
    assert day.offline == day.waiting_upload == Count(1, 5500)
    assert day.charges == day.cancels == Count(1, 5500)
    assert day.total_cents == 19000
    assert day.conflicts == Count(1, 3000)
    assert day.late_answers == Count(1, 7000)
    assert day.services == (("Classic", Count(1, 6500)), ("Sports", Count(1, 5500)))
    assert day.unmatched == Count(1, 7000)  # the charge was cancelled: in no service
    assert day.rows == 8


def test_a_period_older_than_the_retention_is_refused_once_rows_were_pruned(
    tmp_path: Path,
) -> None:
    with Journal.open(tmp_path / "j.db") as j:
        j.record(
            RequestKind.RECEIPT, Word.CHECKED, tx="tx_a", amount_cents=100, now=NOW - 40 * 86400
        )
        since = NOW - 35 * 86400
        assert len(period_rows(j, since, now=NOW, retention_days=30)) == 0  # nothing pruned
        j.prune(30, now=NOW)
        with pytest.raises(IncompletePeriod, match="keeps 30 days"):
            period_rows(j, since, now=NOW, retention_days=30)
        assert period_rows(j, NOW - 86400, now=NOW, retention_days=30) == []
