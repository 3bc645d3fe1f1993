"""The offline policy: which receipt may be accepted while the backend is away."""

from __future__ import annotations

import pytest

from kiosk.config import OfflineConfig
from kiosk.flows.offline import OfflinePolicy

NOW = 1_800_000_000.0
POLICY = OfflinePolicy(
    OfflineConfig(
        enabled=True, max_amount_cents=5000, max_total_cents=9000, max_count=3, max_age_hours=24.0
    )
)


def refusal(amount: int, count: int = 0, total: int = 0, age_h: float | None = 1.0) -> str | None:
    last = None if age_h is None else NOW - age_h * 3600
    return POLICY.refusal(amount, exposure=(count, total), last_sync=last, now=NOW)


def test_within_every_limit_is_accepted() -> None:
    assert refusal(5000) is None
    assert refusal(4000, count=2, total=5000) is None  # exactly the total limit


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({"amount": 1000, "age_h": None}, "stale_sync"),  # never synced
        ({"amount": 1000, "age_h": 24.0}, "stale_sync"),  # the age limit is exclusive
        ({"amount": 5001}, "limit_amount"),
        ({"amount": 1000, "count": 3, "total": 3000}, "limit_count"),
        ({"amount": 1000, "count": 2, "total": 8001}, "limit_total"),
    ],
)
def test_each_limit_has_its_reason(args: dict[str, int], reason: str) -> None:
    assert refusal(**args) == reason  # type: ignore[arg-type]


def test_the_order_of_reasons() -> None:
    # A stale sync is reported before the amount, the amount before the count.
    assert refusal(9999, count=99, total=99999, age_h=48.0) == "stale_sync"
    assert refusal(9999, count=99, total=99999) == "limit_amount"


def test_disabled_refuses_everything() -> None:
    off = OfflinePolicy(OfflineConfig(enabled=False))
    assert off.refusal(1, exposure=(0, 0), last_sync=NOW, now=NOW) == "offline_disabled"
