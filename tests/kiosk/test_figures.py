"""The journal's figures: cumulative counters keep what the retention prunes, windows do not."""

from __future__ import annotations

from pathlib import Path

from kiosk.clock import Clocks
from kiosk.figures import read_figures
from kiosk.journal import Journal
from kiosk.vocabulary import RequestKind, Word

DAY = 86400.0
NOW = 1000 * DAY
AT_NOW = Clocks(NOW, None, synced=True)  # rows without a conflict stamp: dated by wall time


def test_prune_leaves_the_counters_and_the_24h_window_as_they_were(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal.open(path) as j:
        for n in range(3):
            j.record(RequestKind.RECEIPT, Word.CHECKED, tx=f"tx_old_{n}", now=NOW - 200 * DAY)
        j.record(RequestKind.RECEIPT, Word.CONFLICT, tx="tx_old_conflict", now=NOW - 200 * DAY)
        j.record(RequestKind.CHARGE, Word.PAYCODE_USED, now=NOW - 100 * DAY)
        j.record(RequestKind.RECEIPT, Word.CONFLICT, tx="tx_conflict", now=NOW - 3600.0)
        j.record(RequestKind.RECEIPT, Word.CHECKED, tx="tx_new", now=NOW - 60.0)
        before = read_figures(j, AT_NOW)
        assert before.outcomes == {"checked": 4, "conflict": 2, "paycode_used": 1}
        assert (before.conflicts, before.conflicts_24h) == (2, 1)

        assert j.prune(90, now=NOW) == 5
        after = read_figures(j, AT_NOW)
        assert after.outcomes == before.outcomes
        assert after.conflicts == before.conflicts == 2
        assert after.conflicts_24h == 1  # a window of 24 h, not a counter: the tally stays out

        # The next scan counts on from there, and a restart reads the same.
        j.record(RequestKind.RECEIPT, Word.CONFLICT, tx="tx_next", now=NOW)
    with Journal.open(path) as j:
        again = read_figures(j, AT_NOW)
    assert again.outcomes == {"checked": 4, "conflict": 3, "paycode_used": 1}
    assert (again.conflicts, again.conflicts_24h) == (3, 2)
