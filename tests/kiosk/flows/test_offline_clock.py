"""Offline acceptance and key refresh against a wall clock that jumps (a Pi has no RTC)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kiosk.clock import BootTime
from kiosk.flows.context import FlowContext, default_client, open_context
from kiosk.flows.receipt import check_receipt
from kiosk.flows.sync_worker import KEYS_MAX_AGE_S, SyncWorker
from kiosk.tokens import Receipt
from kiosk.views import Outcome
from refbackend import DEMO_VENUE, ReferenceBackend

BOOT_A = BootTime("4a1f0c2e-5b6d-4e7f-8a9b-0c1d2e3f4a5b", 1000.0)
BOOT_B = BootTime("9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b", 40.0)


class Device:
    """What the kiosk knows of time: wall clock, its sync state, and the boot clock."""

    def __init__(self) -> None:
        self.wall = 1_900_000_000.0
        self.synced = True
        self.boot: BootTime | None = BOOT_A

    def context(self, cfg: Any) -> FlowContext:
        return open_context(
            cfg,
            client_factory=default_client,
            clock=lambda: self.wall,
            clock_synced=lambda: self.synced,
            boot=lambda: self.boot,
        )

    def run(self, cfg: Any, action: Callable[[FlowContext], Any]) -> Any:
        ctx = self.context(cfg)
        try:
            return action(ctx)
        finally:
            ctx.client.close()
            ctx.journal.close()

    def scan(self, cfg: Any, token: str) -> Outcome:
        def scan(ctx: FlowContext) -> Outcome:
            if not len(ctx.keys.keys):
                ctx.keys.refresh(ctx.client, ctx.journal, now=ctx.clock())
            scanned = ctx.classify(token)
            assert isinstance(scanned, Receipt), scanned
            return check_receipt(ctx, scanned)

        return self.run(cfg, scan)


def test_offline_after_a_reboot_waits_for_a_synchronised_clock(
    make_config: Any, refbackend: ReferenceBackend
) -> None:
    cfg = make_config()
    device = Device()
    assert device.scan(cfg, refbackend.mint_receipt(DEMO_VENUE, 1000)[1]).word == "checked"
    refbackend.pause()
    # Same boot, clock lost its sync and was set back 3 days: the boot clock says 1 min.
    device.synced, device.wall = False, device.wall - 3 * 86400
    device.boot = BootTime(BOOT_A.boot_id, BOOT_A.seconds + 60)
    assert device.scan(cfg, refbackend.mint_receipt(DEMO_VENUE, 1100)[1]).word == (
        "checked_offline"
    )
    # Rebooted, no NTP yet: the last sync cannot be dated.
    device.boot, device.wall = BOOT_B, device.wall + 3 * 86400 + 120
    refused = device.scan(cfg, refbackend.mint_receipt(DEMO_VENUE, 1200)[1])
    assert (refused.word, refused.reason) == ("needs_network", "stale_sync")
    device.synced = True  # NTP is back: the wall clock dates the sync (2 minutes ago)
    assert device.scan(cfg, refbackend.mint_receipt(DEMO_VENUE, 1300)[1]).word == (
        "checked_offline"
    )


def test_a_last_sync_in_the_future_refuses_offline(
    make_config: Any, refbackend: ReferenceBackend
) -> None:
    cfg = make_config()
    device = Device()
    device.wall += 5 * 86400  # synced while the clock was 5 days ahead
    assert device.scan(cfg, refbackend.mint_receipt(DEMO_VENUE, 1000)[1]).word == "checked"
    refbackend.pause()
    device.wall -= 5 * 86400  # NTP corrected it, and the kiosk rebooted
    device.boot = BOOT_B
    refused = device.scan(cfg, refbackend.mint_receipt(DEMO_VENUE, 1100)[1])
    assert (refused.word, refused.reason) == ("needs_network", "stale_sync")


def test_key_refresh_is_due_when_fetched_at_lies_in_the_future(
    make_config: Any, refbackend: ReferenceBackend
) -> None:
    cfg = make_config()
    device = Device()
    device.wall += 30 * 86400  # keys fetched while the clock was a month ahead
    fetched = device.run(
        cfg, lambda ctx: ctx.keys.refresh(ctx.client, ctx.journal, now=device.wall)
    )
    assert fetched
    device.wall -= 30 * 86400

    def upkeep(ctx: FlowContext) -> float:
        ctx.keys.load(ctx.journal)
        assert ctx.keys.fetched_at > device.wall
        # An unknown key id may refresh at most once a minute: not blocked for a month.
        assert ctx.keys.refresh(ctx.client, ctx.journal, now=device.wall, min_age=60.0)
        return ctx.keys.fetched_at

    assert device.run(cfg, upkeep) == device.wall
    # The sync worker's daily refresh: a future fetched_at is due now.
    device.wall += 30 * 86400
    device.run(cfg, lambda ctx: ctx.keys.refresh(ctx.client, ctx.journal, now=device.wall))
    device.wall -= 30 * 86400

    def daily(ctx: FlowContext) -> float:
        ctx.keys.load(ctx.journal)
        worker = SyncWorker(lambda: ctx)
        worker._upkeep(ctx)
        return ctx.keys.fetched_at

    assert device.run(cfg, daily) == device.wall
    assert KEYS_MAX_AGE_S == 24 * 3600.0
