"""Cutting the network again and again: conflicts turn offline acceptance off for 24 h."""

from __future__ import annotations

from typing import Any

from counter_two import checked_elsewhere

from kiosk.backend.client import BackendClient
from kiosk.clock import read_clocks
from kiosk.flows.offline import DAY_S, clear_conflicts
from kiosk.journal import Journal
from kiosk.views import TechInfo
from refbackend import DEMO_VENUE, ReferenceBackend


def used_elsewhere(backend: ReferenceBackend, other: BackendClient, n: int) -> list[str]:
    """*n* receipts already checked at the other counter."""
    return [checked_elsewhere(backend, other, 2000) for _ in range(n)]


def cut_scan_reconnect(sim: Any, tokens: list[str]) -> list[Any]:
    sim.backend.pause()
    outcomes = [sim.scan(t) for t in tokens]
    sim.backend.resume()
    sim.wait_synced()
    return outcomes


def test_three_cycles_of_cut_and_rescan_give_at_most_three_double_redemptions(
    make_sim: Any, other_counter: BackendClient
) -> None:
    sim = make_sim()
    _, warmup = sim.backend.mint_receipt(DEMO_VENUE, 1000)
    assert sim.scan(warmup).word == "checked"
    words = []
    for _cycle in range(3):
        outcomes = cut_scan_reconnect(sim, used_elsewhere(sim.backend, other_counter, 3))
        words.append([(o.word, o.reason) for o in outcomes])
    assert words[0] == [("checked_offline", "")] * 3
    assert words[1] == words[2] == [("needs_network", "conflicts")] * 3
    double = sum(w == "checked_offline" for cycle in words for w, _ in cycle)
    assert double == 3
    with Journal.open(sim.cfg.journal.path) as journal:
        assert len(journal.conflicts()) == 3
    sim.press("up", long=True)
    info = sim.wait_view(TechInfo)
    assert (info.conflicts_24h, info.offline_off) == (3, True)


def test_offline_resumes_after_24_hours_or_a_clear(
    make_sim: Any, other_counter: BackendClient
) -> None:
    sim = make_sim(offline={"max_conflicts_per_day": 2})
    _, warmup = sim.backend.mint_receipt(DEMO_VENUE, 1000)
    assert sim.scan(warmup).word == "checked"
    first = cut_scan_reconnect(sim, used_elsewhere(sim.backend, other_counter, 2))
    assert [o.word for o in first] == ["checked_offline"] * 2
    (refused,) = cut_scan_reconnect(sim, used_elsewhere(sim.backend, other_counter, 1))
    assert (refused.word, refused.reason) == ("needs_network", "conflicts")
    # A technician clears the count: stored in the journal, the service follows at once.
    with Journal.open(sim.cfg.journal.path) as journal:
        assert clear_conflicts(journal, read_clocks(), by="tech").conflicts == 2
    (again,) = cut_scan_reconnect(sim, used_elsewhere(sim.backend, other_counter, 1))
    assert again.word == "checked_offline"
    sim.press("up", long=True)
    info = sim.wait_view(TechInfo)
    assert (info.conflicts_24h, info.offline_off) == (1, False)


def test_conflicts_age_out_after_24_hours(make_config: Any, refbackend: ReferenceBackend) -> None:
    from kiosk.flows.context import default_client, open_context

    cfg = make_config(offline={"max_conflicts_per_day": 1})
    now = [1_900_000_000.0]
    # A conflict row without a stamp of when it was recorded (an older release's) is
    # dated by its wall time, which counts only while the clock is synchronised.
    ctx = open_context(
        cfg, client_factory=default_client, clock=lambda: now[0], clock_synced=lambda: True
    )
    try:
        ctx.mark_synced()
        ctx.journal.record("receipt", "conflict", tx="tx_aaaaaaaaaaaaaaaa", now=now[0] - 10)
        assert ctx.offline_refusal(1000) == "conflicts"
        now[0] += DAY_S - 9  # the conflict's scan is over 24 h old; the last sync is not
        ctx.mark_synced()
        assert ctx.offline_refusal(1000) is None
    finally:
        ctx.client.close()
        ctx.journal.close()
