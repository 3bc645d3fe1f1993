"""A late answer never counts one transaction twice in the settlement.

A scan whose request reached the backend but whose answer came too late shows
``needs_network``; the answer lands later (the sync worker, ``kiosk sync``, or the
customer's rescan resending the same key). Whatever the order, the exports hold
one row of money per transaction, and a late answer that turned the refusal the
customer saw into an acceptance is marked as such.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.cli._common import flow_context
from kiosk.config import load_config
from kiosk.flows import payment
from kiosk.tokens import BareCode
from refbackend import DEMO_VENUE, ReferenceBackend

MONEY = ("checked", "checked_offline", "charged")
SLOW = {"scan_budget": 0.4, "read_timeout": 2.0}


def wait_backend(backend: ReferenceBackend, sql: str, args: tuple[Any, ...]) -> None:
    """Until the backend's own database answers *sql* with a row: it did the work."""
    import sqlite3

    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        conn = sqlite3.connect(f"file:{backend.db}?mode=ro", uri=True, timeout=5.0)
        try:
            if conn.execute(sql, args).fetchone():
                return
        finally:
            conn.close()
        time.sleep(0.05)
    raise AssertionError(f"the backend never did {sql}")


def csv_rows(cli: Any, config: Path) -> list[dict[str, str]]:
    code, out, err = cli("history", "--config", str(config), "--local", "--csv")
    assert code == 0, err
    return list(csv.DictReader(io.StringIO(out, newline="")))


def json_items(cli: Any, config: Path) -> list[dict[str, Any]]:
    code, out, err = cli("history", "--config", str(config), "--local", "--json")
    assert code == 0, err
    return list(json.loads(out)["items"])


def money_rows(rows: list[dict[str, str]], tx: str) -> list[dict[str, str]]:
    return [r for r in rows if r["tx"] == tx and r["outcome"] in MONEY]


def late_scan(counter: Any, backend: ReferenceBackend, token: str) -> None:
    """A scan the backend processes after the counter gave up waiting."""
    backend.faults.delay_s = 1.0
    outcome = counter.scan_receipt(token)
    assert (outcome.word, outcome.reason) == ("needs_network", "stale_sync"), outcome
    backend.faults.delay_s = 0.0


def test_late_answer_then_rescan_is_one_row_of_money(
    cli: Any, kiosk_toml: Callable[..., Path], make_desk: Any, refbackend: ReferenceBackend
) -> None:
    config = kiosk_toml(backend=SLOW)
    counter = make_desk(config)
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    late_scan(counter, refbackend, token)
    wait_backend(refbackend, "SELECT 1 FROM transactions WHERE tx = ? AND state = 'checked'", (tx,))
    # Before the customer comes back, the late answer lands: the export shows it, marked.
    code, _, err = cli("sync", "--config", str(config))
    assert code == 0, err
    rows = money_rows(csv_rows(cli, config), tx)
    assert [(r["outcome"], r["amount_eur"], r["late_answer"]) for r in rows] == [
        ("checked", "65.00", "yes")
    ]
    late = [i for i in json_items(cli, config) if i["tx"] == tx]
    assert [(i["outcome"], i["late_answer"], i["shown"]) for i in late] == [
        ("checked", True, "needs_network")
    ]
    # The customer scans again and is served: still one row of money.
    again = counter.scan_receipt(token)
    assert again.word == "checked"
    rows = csv_rows(cli, config)
    assert len(money_rows(rows, tx)) == 1, rows
    assert [(r["outcome"], r["late_answer"]) for r in rows if r["tx"] == tx] == [
        ("checked", "no"),  # newest first: the rescan that served the customer
        ("needs_network", "no"),  # what the customer was shown first
    ]
    # A third scan is a rescan of a receipt served here: refused, nothing counted.
    third = counter.scan_receipt(token)
    assert (third.word, third.checked_by) == ("already_checked", "counter-1")
    assert len(money_rows(csv_rows(cli, config), tx)) == 1


def test_rescan_before_the_late_answer_is_one_row_of_money(
    cli: Any, kiosk_toml: Callable[..., Path], make_desk: Any, refbackend: ReferenceBackend
) -> None:
    config = kiosk_toml(backend=SLOW)
    counter = make_desk(config)
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 5500)
    late_scan(counter, refbackend, token)
    wait_backend(refbackend, "SELECT 1 FROM transactions WHERE tx = ? AND state = 'checked'", (tx,))
    # The rescan resends the same key and gets the answer itself.
    assert counter.scan_receipt(token).word == "checked"
    rows = csv_rows(cli, config)
    assert len(money_rows(rows, tx)) == 1, rows
    assert sorted(r["outcome"] for r in rows if r["tx"] == tx) == ["checked", "needs_network"]


def test_repeated_refusals_of_one_request_are_one_row_of_money(
    cli: Any, kiosk_toml: Callable[..., Path], make_desk: Any, refbackend: ReferenceBackend
) -> None:
    config = kiosk_toml(backend=SLOW)
    counter = make_desk(config)
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 4000)
    late_scan(counter, refbackend, token)
    refbackend.faults.delay_s = 1.0  # still in progress at the backend: unknown again
    assert counter.scan_receipt(token).word == "needs_network"
    refbackend.faults.delay_s = 0.0
    wait_backend(refbackend, "SELECT 1 FROM transactions WHERE tx = ? AND state = 'checked'", (tx,))
    code, _, err = cli("sync", "--config", str(config))
    assert code == 0, err
    rows = csv_rows(cli, config)
    assert [(r["outcome"], r["late_answer"]) for r in money_rows(rows, tx)] == [("checked", "yes")]
    assert sorted(r["outcome"] for r in rows if r["tx"] == tx) == ["checked", "needs_network"]


def test_a_charge_resent_after_an_unknown_outcome_is_one_row_of_money(
    cli: Any, kiosk_toml: Callable[..., Path], refbackend: ReferenceBackend
) -> None:
    config = kiosk_toml(backend={"scan_budget": 0.4, "read_timeout": 0.5})
    cfg = load_config(config)
    code = refbackend.mint_paycode(10000)["code"]
    with flow_context(cfg) as ctx:
        ctx.venue.refresh(ctx.client, ctx.journal, cfg.device.venue, now=ctx.clock())
        service = payment.service_named(ctx, "classic-60")
        assert service is not None
        refbackend.faults.delay_s = 1.0
        first = payment.charge(ctx, BareCode(code), service)
    assert (first.word, first.reason) == ("needs_network", "charge_pending"), first
    refbackend.faults.delay_s = 0.0
    wait_backend(refbackend, "SELECT 1 FROM transactions WHERE kind = 'charge'", ())
    with flow_context(cfg) as ctx:  # the code is scanned again: the pending charge is resent
        resend = payment.start(ctx, BareCode(code), has_buttons=True)
        assert isinstance(resend, payment.Resend)
        again = payment.send_charge(ctx, resend.request, resend.service_name)
    assert again.word == "charged"
    rows = csv_rows(cli, config)
    charged = [r for r in rows if r["outcome"] == "charged"]
    assert [(r["amount_eur"], r["late_answer"]) for r in charged] == [("65.00", "no")], rows
