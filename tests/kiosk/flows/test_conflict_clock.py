"""The 24 h conflict window against a wall clock that someone moves (NTP spoofed on the LAN).

Each conflict is dated when the kiosk records it, like the last sync: by the boot-time
clock within a boot, by a synchronised wall clock across a reboot, and counted when it
cannot be dated. A technician's clear sets aside the conflicts recorded before it,
whatever the clocks said.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from counter_two import checked_elsewhere

from kiosk.backend.client import BackendClient
from kiosk.clock import BootTime
from kiosk.figures import read_figures
from kiosk.flows.context import FlowContext, default_client, open_context
from kiosk.flows.offline import clear_conflicts, clears
from kiosk.flows.receipt import check_receipt
from kiosk.flows.sync import sync_once
from kiosk.journal import Journal
from kiosk.tokens import Receipt
from refbackend import DEMO_VENUE, ReferenceBackend

HOUR = 3600.0
BOOT_A = BootTime("3b9e51c4-7d2a-4f86-9c1e-5a0b8d7f6e21", 2000.0)
BOOT_B = BootTime("c4a7e0d2-19f3-4b5e-8a6c-7d2e1f0b9a38", 45.0)


class Device:
    """What the kiosk knows of time, each clock moved on its own by the test."""

    def __init__(self, cfg: Any, backend: ReferenceBackend, other: BackendClient) -> None:
        self.cfg, self.backend, self.other = cfg, backend, other
        self.wall = 1_900_000_000.0
        self.synced = True
        self.boot: BootTime | None = BOOT_A

    def later(self, seconds: float, *, wall: float | None = None) -> None:
        """*seconds* pass on the boot clock; the wall clock moves by *wall* (default the same)."""
        assert self.boot is not None
        self.boot = BootTime(self.boot.boot_id, self.boot.seconds + seconds)
        self.wall += seconds if wall is None else wall

    def reboot(self, boot: BootTime, *, wall: float) -> None:
        self.boot, self.wall = boot, self.wall + wall

    def run(self, action: Callable[[FlowContext], Any]) -> Any:
        ctx = open_context(
            self.cfg,
            client_factory=default_client,
            clock=lambda: self.wall,
            clock_synced=lambda: self.synced,
            boot=lambda: self.boot,
        )
        try:
            return action(ctx)
        finally:
            ctx.client.close()
            ctx.journal.close()

    def scan(self, token: str) -> Any:
        def scan(ctx: FlowContext) -> Any:
            if not len(ctx.keys.keys):
                ctx.keys.refresh(ctx.client, ctx.journal, now=ctx.clock())
            scanned = ctx.classify(token)
            assert isinstance(scanned, Receipt), scanned
            return check_receipt(ctx, scanned)

        return self.run(scan)

    def accept_offline_a_receipt_used_elsewhere(self) -> None:
        """A receipt checked at counter-2 is accepted here with the backend unreachable."""
        token = checked_elsewhere(self.backend, self.other, 1500)
        self.backend.pause()
        try:
            assert self.scan(token).word == "checked_offline"
        finally:
            self.backend.resume()

    def upload(self) -> int:
        """Send what the journal owes the backend: the offline acceptance becomes a conflict."""
        report = self.run(lambda ctx: sync_once(ctx, everything=True))
        assert report.remaining == 0
        return int(report.conflicts)

    def offline_refusal(self) -> str | None:
        """Why a 10 EUR receipt would be refused offline now (None: accepted)."""
        return self.run(lambda ctx: ctx.offline_refusal(1000))

    def conflicts_24h(self) -> int:
        """The figure ``kiosk status``, the metrics and the technician screen show."""
        return self.run(lambda ctx: read_figures(ctx.journal, ctx.clocks()).conflicts_24h)

    def sync_now(self) -> None:
        """The backend answers (the offline age starts again from here)."""
        self.run(lambda ctx: ctx.mark_synced())


@pytest.fixture
def device(make_config: Any, refbackend: ReferenceBackend, other_counter: BackendClient) -> Device:
    cfg = make_config(offline={"max_conflicts_per_day": 1})
    dev = Device(cfg, refbackend, other_counter)
    assert dev.scan(refbackend.mint_receipt(DEMO_VENUE, 1000)[1]).word == "checked"
    return dev


def one_conflict(device: Device) -> None:
    device.accept_offline_a_receipt_used_elsewhere()
    assert device.upload() == 1
    assert (device.offline_refusal(), device.conflicts_24h()) == ("conflicts", 1)


def test_moving_the_wall_clock_forward_does_not_age_a_conflict_out(device: Device) -> None:
    one_conflict(device)
    # A minute later by the boot clock, the wall clock says a day and an hour.
    device.later(60, wall=25 * HOUR)
    device.sync_now()
    assert (device.offline_refusal(), device.conflicts_24h()) == ("conflicts", 1)
    # A real day later it ages out.
    device.later(24 * HOUR)
    device.sync_now()
    assert (device.offline_refusal(), device.conflicts_24h()) == (None, 0)


def test_a_conflict_after_a_clear_counts_though_the_clock_was_set_back(
    device: Device,
) -> None:
    one_conflict(device)
    device.run(lambda ctx: clear_conflicts(ctx.journal, ctx.clocks(), by="tech"))
    assert (device.offline_refusal(), device.conflicts_24h()) == (None, 0)
    # The wall clock is set back two days, and a second double redemption follows.
    device.later(60, wall=-48 * HOUR)
    device.sync_now()
    one_conflict(device)
    # Setting the clock back again hides neither the clear nor the new conflict.
    device.later(60, wall=-48 * HOUR)
    assert (device.offline_refusal(), device.conflicts_24h()) == ("conflicts", 1)


def test_a_clear_sets_aside_what_was_recorded_before_it_whatever_the_clock(
    device: Device,
) -> None:
    one_conflict(device)
    # The clock jumps back two days before the technician clears: the conflict's scan now
    # lies "after" the clear on the wall clock, and must be set aside all the same.
    device.later(60, wall=-48 * HOUR)
    device.sync_now()
    done = device.run(lambda ctx: clear_conflicts(ctx.journal, ctx.clocks(), by="tech"))
    assert done.conflicts == 1
    assert (device.offline_refusal(), device.conflicts_24h()) == (None, 0)
    # An offline acceptance scanned before the clear but found used after it counts.
    device.accept_offline_a_receipt_used_elsewhere()
    device.later(60)
    device.run(lambda ctx: clear_conflicts(ctx.journal, ctx.clocks(), by="tech"))
    assert device.upload() == 1
    assert (device.offline_refusal(), device.conflicts_24h()) == ("conflicts", 1)


def test_after_a_reboot_an_unsynchronised_clock_cannot_date_a_conflict(device: Device) -> None:
    device.accept_offline_a_receipt_used_elsewhere()
    device.later(10 * HOUR)  # the upload comes ten hours after the scan
    assert device.upload() == 1
    # Rebooted a day and an hour later by the wall clock, with no NTP yet.
    device.synced = False
    device.reboot(BOOT_B, wall=25 * HOUR)
    device.sync_now()
    assert (device.offline_refusal(), device.conflicts_24h()) == ("conflicts", 1)


def test_after_a_reboot_a_synchronised_clock_dates_a_conflict_from_its_recording(
    device: Device,
) -> None:
    device.accept_offline_a_receipt_used_elsewhere()
    device.later(10 * HOUR)  # recorded ten hours after the scan: the day counts from here
    assert device.upload() == 1
    device.reboot(BOOT_B, wall=23 * HOUR)
    device.sync_now()
    assert (device.offline_refusal(), device.conflicts_24h()) == ("conflicts", 1)
    device.later(2 * HOUR)
    device.sync_now()
    assert (device.offline_refusal(), device.conflicts_24h()) == (None, 0)


def test_an_older_release_clear_record_still_reads(device: Device) -> None:
    one_conflict(device)
    recorded_at = device.wall

    def older_clear(at: float) -> None:  # no seq, no upto_id: by the wall clock
        text = json.dumps([{"at": at, "by": "tech", "conflicts": 1}])
        device.run(lambda ctx: ctx.journal.set_meta("conflicts_cleared", text))

    older_clear(recorded_at - 5)  # before the conflict: it still counts
    with Journal.open(device.cfg.journal.path) as journal:
        (record,) = clears(journal)
    assert (record.at, record.by, record.conflicts) == (recorded_at - 5, "tech", 1)
    assert (device.offline_refusal(), device.conflicts_24h()) == ("conflicts", 1)
    older_clear(recorded_at + 5)  # after it: set aside, as that release meant
    assert (device.offline_refusal(), device.conflicts_24h()) == (None, 0)
    # The next clear is kept after it, in the new form, and the old one still reads.
    device.later(60)
    device.run(lambda ctx: clear_conflicts(ctx.journal, ctx.clocks(), by="tech-2"))
    with Journal.open(device.cfg.journal.path) as journal:
        assert [(c.at, c.by) for c in clears(journal)] == [
            (recorded_at + 5, "tech"),
            (device.wall, "tech-2"),
        ]
