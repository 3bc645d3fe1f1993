"""What answering a request costs does not grow with the journal's history."""

from __future__ import annotations

from pathlib import Path

from kiosk.journal import Journal
from kiosk.journal.money import keep_one_row_of_money
from kiosk.vocabulary import RequestKind, Word


def history(journal: Journal, scans: int) -> None:
    """*scans* answered receipt checks with their outcome rows, as a day's work leaves them."""
    with journal.transaction():
        for i in range(scans):
            request = journal.begin(RequestKind.RECEIPT, {"token": f"t{i}"}, tx=f"tx_{i:08d}")
            journal.settle(request.id, "checked", 200, {}, word=Word.CHECKED)
            journal.record(RequestKind.RECEIPT, Word.CHECKED, tx=f"tx_{i:08d}",
                           request_id=request.id)  # fmt: skip


def answer_steps(journal: Journal) -> int:
    """SQLite virtual-machine steps of one online answer: settle and record its outcome."""
    request = journal.begin(RequestKind.RECEIPT, {"token": "new"}, tx="tx_new", sending=True)
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    journal.conn.set_progress_handler(count, 1)
    try:
        with journal.transaction(durable=False):
            journal.settle(request.id, "checked", 200, {}, word=Word.CHECKED, tx="tx_new")
            keep_one_row_of_money(journal.conn, request.id, RequestKind.RECEIPT, Word.CHECKED)
            journal.record(RequestKind.RECEIPT, Word.CHECKED, tx="tx_new", request_id=request.id)
    finally:
        journal.conn.set_progress_handler(None, 1)
    return steps


def test_an_answer_costs_the_same_in_a_young_and_an_old_journal(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "young.db") as young, Journal.open(tmp_path / "old.db") as old:
        history(young, 20)
        history(old, 3000)
        small, large = answer_steps(young), answer_steps(old)
    assert large < small * 1.5, (small, large)
