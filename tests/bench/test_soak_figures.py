"""The soak's growth per day is a line through the samples after warm-up, not a peak."""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import pytest

from bench import soak


def _samples(rss_at: Any, *, seconds: float, every: float = 5.0) -> list[soak.Sample]:
    steps = int(seconds / every) + 1
    return [
        soak.Sample(
            t=k * every,
            sim_hour=0.0,
            phase="online",
            rss_mb=rss_at(k * every),
            fds=20,
            threads=6,
            journal_kb=100.0,
            outcomes=k,
        )
        for k in range(steps)
    ]


def _summary(samples: list[soak.Sample], *, day_s: float, days: int) -> soak.SoakResult:
    return soak._summarise(
        samples,
        duration=day_s,
        days=days,
        day_hours=8.0,
        frames=0,
        codes=0,
        outcomes=Counter(),
        restarts=0,
        outages=0,
        accepted=0,
        lost=0,
        decoded=0,
    )


def test_a_heap_that_fills_on_the_first_day_and_then_breathes_does_not_grow() -> None:
    """Caches filling on day one (+4 MB), then pages given back and taken again (0.6 MB)."""
    jitter = random.Random(7)

    def rss(t: float) -> float:
        filled = 64.0 + 4.0 * min(t / 50.0, 1.0)
        return filled + 0.6 * (math.sin(t / 7.0) > 0) + jitter.uniform(-0.05, 0.05)

    result = _summary(_samples(rss, seconds=180), day_s=60, days=3)
    assert abs(result.rss_growth_per_day_mb) < 0.3
    assert result.rss_start_mb == pytest.approx(64.0, abs=0.1)
    assert result.rss_warm_mb > 67.5  # the first day's rise is reported, not counted as growth
    assert result.ok


def test_a_steady_leak_is_measured_per_day_whatever_the_breathing() -> None:
    """1.5 MB per simulated day (60 s), under the same ups and downs: measured, and refused."""

    def rss(t: float) -> float:
        return 66.0 + 1.5 * t / 60.0 + 0.6 * (math.sin(t / 7.0) > 0)

    result = _summary(_samples(rss, seconds=180), day_s=60, days=3)
    assert result.rss_growth_per_day_mb == pytest.approx(1.5, abs=0.25)
    assert not result.ok


def test_one_day_counts_after_its_first_quarter() -> None:
    def rss(t: float) -> float:
        return 60.0 + (10.0 if t < 45 else 0.0) + 2.0 * t / 180.0

    result = _summary(_samples(rss, seconds=180), day_s=180, days=1)
    assert result.rss_growth_per_day_mb == pytest.approx(2.0, abs=0.05)
