"""The offline policy: which receipt may be accepted while the backend is away."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.clock import BootTime, Clocks
from kiosk.config import OfflineConfig
from kiosk.flows.offline import (
    OfflinePolicy,
    SyncStamp,
    clear_conflicts,
    clears,
    conflicts_24h,
    sync_age,
)
from kiosk.journal import Journal

NOW = 1_800_000_000.0
POLICY = OfflinePolicy(
    OfflineConfig(
        enabled=True, max_amount_cents=5000, max_total_cents=9000, max_count=3, max_age_hours=24.0
    )
)
BOOT = BootTime("7d3c6a1e-0b5f-4c1e-9f55-1a2b3c4d5e6f", 5000.0)
OTHER_BOOT = BootTime("0c9d2b7a-63e8-4f0e-8b1d-6e5f4a3b2c1d", 60.0)


def refusal(
    amount: int, count: int = 0, total: int = 0, age_h: float | None = 1.0, conflicts: int = 0
) -> str | None:
    age = None if age_h is None else age_h * 3600
    return POLICY.refusal(amount, exposure=(count, total), sync_age=age, conflicts_24h=conflicts)


def test_within_every_limit_is_accepted() -> None:
    assert refusal(5000) is None
    assert refusal(4000, count=2, total=5000) is None  # exactly the total limit
    assert refusal(4000, conflicts=2) is None  # one below max_conflicts_per_day (3)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({"amount": 1000, "age_h": None}, "stale_sync"),  # never synced, or not measurable
        ({"amount": 1000, "age_h": 24.0}, "stale_sync"),  # the age limit is exclusive
        ({"amount": 5001}, "limit_amount"),
        ({"amount": 1000, "count": 3, "total": 3000}, "limit_count"),
        ({"amount": 1000, "count": 2, "total": 8001}, "limit_total"),
        ({"amount": 1000, "conflicts": 3}, "conflicts"),
    ],
)
def test_each_limit_has_its_reason(args: dict[str, int], reason: str) -> None:
    assert refusal(**args) == reason  # type: ignore[arg-type]


def test_the_order_of_reasons() -> None:
    # Conflicts first, then a stale sync, then the amount, then the count.
    assert refusal(9999, count=99, total=99999, age_h=48.0, conflicts=5) == "conflicts"
    assert refusal(9999, count=99, total=99999, age_h=48.0) == "stale_sync"
    assert refusal(9999, count=99, total=99999) == "limit_amount"


def test_disabled_refuses_everything() -> None:
    off = OfflinePolicy(OfflineConfig(enabled=False))
    assert off.refusal(1, exposure=(0, 0), sync_age=0.0) == "offline_disabled"


# --- the age of the last sync, against clock jumps -------------------------------------------


def age(stamp: SyncStamp | None, now: float = NOW, boot: BootTime | None = None, synced=True):  # type: ignore[no-untyped-def]
    return sync_age(stamp, now=now, now_boot=boot, clock_synced=synced)


def test_a_last_sync_in_the_future_is_stale_not_a_negative_age() -> None:
    future = SyncStamp(NOW + 3 * 86400)  # synced while the clock was days ahead
    assert age(future) is None
    assert POLICY.refusal(1000, exposure=(0, 0), sync_age=age(future)) == "stale_sync"
    assert age(SyncStamp(NOW - 3600)) == 3600


def test_in_the_same_boot_the_boot_clock_measures_whatever_the_wall_clock_says() -> None:
    stamp = SyncStamp(NOW, BOOT)
    later = BootTime(BOOT.boot_id, BOOT.seconds + 25 * 3600)
    # The wall clock was set back two days: the boot clock still sees 25 h.
    assert age(stamp, now=NOW - 2 * 86400, boot=later, synced=False) == 25 * 3600
    soon = BootTime(BOOT.boot_id, BOOT.seconds + 600)
    assert age(stamp, now=NOW + 30 * 86400, boot=soon, synced=False) == 600


def test_after_a_reboot_an_unsynchronised_clock_refuses_offline() -> None:
    stamp = SyncStamp(NOW - 3600, BOOT)
    assert age(stamp, boot=OTHER_BOOT, synced=False) is None
    assert age(stamp, boot=OTHER_BOOT, synced=True) == 3600  # NTP is back: the wall clock
    assert age(SyncStamp(NOW - 3600), boot=None, synced=False) is None  # an older journal


def test_sync_stamps_read_back_and_older_values_still_parse() -> None:
    stamp = SyncStamp(NOW + 0.25, BOOT)
    assert SyncStamp.parse(stamp.encode()) == stamp
    assert SyncStamp.parse(repr(NOW)) == SyncStamp(NOW)
    assert [SyncStamp.parse(t) for t in (None, "", "soon", "1 2")] == [None] * 4


# --- conflicts and the technician's clear ----------------------------------------------------


def synced(wall: float) -> Clocks:
    """The clocks of a kiosk whose wall clock is synchronised, in a boot without a boot id:
    rows without a conflict stamp are dated by their wall time."""
    return Clocks(wall, None, synced=True)


def conflict_at(journal: Journal, at: float) -> None:
    journal.record("receipt", "conflict", tx=f"tx_{int(at):016d}", amount_cents=100, now=at)


def test_conflicts_count_for_24h_by_their_time(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as journal:
        conflict_at(journal, NOW - 86400 - 1)  # too old
        conflict_at(journal, NOW - 86400 + 1)
        conflict_at(journal, NOW - 60)
        journal.record("receipt", "checked_offline", tx="tx_x", now=NOW, synced=False)
        assert conflicts_24h(journal, synced(NOW)) == 2
        assert conflicts_24h(journal, synced(NOW + 2)) == 1  # one aged out


def test_a_clear_is_kept_and_only_later_conflicts_count(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with Journal.open(path) as journal:
        for i in range(3):
            conflict_at(journal, NOW - 100 + i)
        assert conflicts_24h(journal, synced(NOW)) == 3
        done = clear_conflicts(journal, synced(NOW), by="tech")
        assert (done.conflicts, done.at, done.by) == (3, NOW, "tech")
    with Journal.open(path) as journal:  # durable: a restart does not undo it
        assert conflicts_24h(journal, synced(NOW + 1)) == 0
        conflict_at(journal, NOW + 5)
        assert conflicts_24h(journal, synced(NOW + 10)) == 1
        assert [c.conflicts for c in clears(journal)] == [3]
