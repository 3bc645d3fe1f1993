"""The day report agrees with the settlement CSV and with the backend, to the cent.

A day at the counter with an outage (offline acceptances uploaded later), a
scrambled journal index page mended at a restart, then a scrambled page of the
requests table (above its leaves) while two uploads wait: the restart salvages every
row into a fresh journal, keys kept. A receipt checked first at counter-2 and
rescanned offline, an offline acceptance the backend finds used (a conflict), late
answers (one the customer rescans, one they never see), rescans of a served receipt,
a failed update in the middle of the day (a newer release's selftest, on a copy of
the journal, then its start migrates the journal and it fails; the rollback takes the
journal back), a charge and a cancel. Then ``kiosk history --local --summary`` (text
and JSON), the report screen's figures, ``kiosk history --local --csv`` and the
backend's ``kiosk history --json`` are compared.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from journal_damage import scramble_index, scramble_table_page

import kiosk.journal
import kiosk.journal.schema
import kiosk.journal.snapshot
from kiosk.backend.client import BackendClient
from kiosk.cli._common import flow_context
from kiosk.config import Config, Secret, load_config
from kiosk.errors import JournalError
from kiosk.flows import payment, tech
from kiosk.journal import SCHEMA_VERSION, Journal
from kiosk.journal.snapshot import copy_to, schema_version
from kiosk.selftest import PASS, run_selftest, simulated
from refbackend import DEMO_VENUE, ReferenceBackend

UPDATE_SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "update-remote.sh"
NEWER = SCHEMA_VERSION + 1

SECTIONS: dict[str, dict[str, Any]] = {
    "backend": {"scan_budget": 0.4, "read_timeout": 2.0},
    "offline": {"max_amount_cents": 5800},
}


class Counter2:
    """Another kiosk of the studio checking receipts at the same backend."""

    def __init__(self, backend: ReferenceBackend) -> None:
        client_id, secret = backend.create_client(DEMO_VENUE)
        self.client = BackendClient(
            backend.url,
            client_id=client_id,
            client_secret=Secret(secret),
            session=requests.Session(),
        )

    def check(self, token: str) -> None:
        body = {
            "token": token,
            "venue": DEMO_VENUE,
            "device": "counter-2",
            "scanned_at": "2026-11-26T10:00:00Z",
            "offline": False,
        }
        assert self.client.check_receipt(str(uuid.uuid4()), body).status == "checked"


def checked_at_backend(backend: ReferenceBackend, tx: str) -> None:
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        conn = sqlite3.connect(f"file:{backend.db}?mode=ro", uri=True, timeout=5.0)
        try:
            row = conn.execute("SELECT state FROM transactions WHERE tx = ?", (tx,)).fetchone()
        finally:
            conn.close()
        if row and row[0] == "checked":
            return
        time.sleep(0.05)
    raise AssertionError(f"{tx} was never checked at the backend")


def run(cli: Any, *argv: str) -> str:
    code, out, err = cli(*argv)
    assert code == 0, (argv, err)
    return str(out)


def day_figures(cli: Any, conf: str) -> tuple[Any, str]:
    """The day report (JSON, less the time it was made) and the settlement CSV, as the
    studio would read them now."""
    summary = json.loads(run(cli, "history", "--config", conf, "--local", "--summary", "--json"))
    del summary["until"]
    return summary, run(cli, "history", "--config", conf, "--local", "--csv")


def pending_keys(cfg: Config) -> list[str]:
    with Journal.open(cfg.journal.path, recover=False) as journal:
        return [r.key for r in journal.open_requests()]


def newer_release(m: pytest.MonkeyPatch) -> None:
    """This process becomes the next release: its journal schema has one migration more."""
    m.setitem(
        kiosk.journal.schema.MIGRATIONS,
        NEWER,
        "ALTER TABLE outcomes ADD COLUMN note TEXT NOT NULL DEFAULT ''",
    )
    for module in (kiosk.journal.schema, kiosk.journal.snapshot, kiosk.journal):
        m.setattr(module, "SCHEMA_VERSION", NEWER)


def take_back(db: Path, backup: Path) -> None:
    """update-remote.sh's ``journal_back_for`` (a rollback after a migration), run as the
    script runs it: its Python, on the live journal and the copy taken before the update."""
    after = UPDATE_SCRIPT.read_text(encoding="utf-8").split("journal_back_for() {", 1)[1]
    code = after.split("<<'PY' || return 1\n", 1)[1].split("\nPY\n", 1)[0]
    done = subprocess.run(
        [sys.executable, "-", str(db), str(backup)],
        input=code,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"journal schema {NEWER} taken back to {SCHEMA_VERSION}" in done.stderr


def failed_update(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next release is checked with ``kiosk selftest``, switched to, migrates the
    journal and fails; the update goes back to this release and takes the journal back."""
    path = Path(cfg.journal.path)
    live = path.read_bytes()
    backup = path.with_name(f"{path.name}.before-next")
    assert copy_to(path, backup) == SCHEMA_VERSION  # update-remote.sh's backup_journal
    with monkeypatch.context() as m:
        newer_release(m)
        results = {r.part: r for r in run_selftest(cfg, simulated(clock_synced=lambda: True))}
        checked = results["journal"]
        assert checked.status == PASS, checked.detail
        assert f"schema {SCHEMA_VERSION} becomes {NEWER}" in checked.detail  # on a copy
        assert path.read_bytes() == live and schema_version(path) == SCHEMA_VERSION
        Journal.open(path).close()  # the next release starts: the live journal migrates
        assert schema_version(path) == NEWER
    with pytest.raises(JournalError, match="newer than this kiosk"):
        Journal.open(path, recover=False)  # this release cannot open it as it is
    take_back(path, backup)
    assert schema_version(path) == SCHEMA_VERSION


def test_day_report_csv_and_backend_agree_after_a_day_with_outages(
    cli: Any,
    kiosk_toml: Callable[..., Path],
    make_desk: Any,
    refbackend: ReferenceBackend,
    demo_client: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = kiosk_toml(**SECTIONS)
    conf = str(config)
    cfg = load_config(config)
    desk = make_desk(config)
    other = Counter2(refbackend)
    mint = refbackend.mint_receipt

    code = refbackend.mint_paycode(10000)["code"]
    charged = desk.charge(code, "sports-45")
    assert charged.word == "charged"  # 55.00, and the price list is cached
    assert desk.charge(code, "sports-45").word == "paycode_used"  # twice: no money
    a_tx, a = mint(DEMO_VENUE, 6500)
    assert desk.scan_receipt(a).word == "checked"
    assert desk.scan_receipt(a).word == "already_checked"  # a rescan: no money
    c_tx, c = mint(DEMO_VENUE, 4000)
    other.check(c)
    assert desk.scan_receipt(c).word == "already_checked"
    f_tx, f = mint(DEMO_VENUE, 3000)

    refbackend.pause()  # the network goes down
    assert desk.scan_receipt(c).word == "already_checked"  # known spent: never offline
    b_tx, b = mint(DEMO_VENUE, 5500)
    assert desk.scan_receipt(b).word == "checked_offline"
    assert desk.scan_receipt(f).word == "checked_offline"
    waiting = day_figures(cli, conf)
    assert waiting[0]["waiting_upload"] == {"count": 2, "cents": 8500}
    # The SD card scrambles an index page; the service's restart mends it in place.
    scramble_index(Path(cfg.journal.path), "outcomes_tx")
    with Journal.open(cfg.journal.path) as journal:
        assert journal.recovery is not None and journal.recovery.how == "reindexed"
    # Then the root page of the requests table, above its leaves: no request can be read
    # through the table any more. The restart salvages every row into a fresh journal
    # (each leaf row under a rowid the table's indexes name), and B and F keep their keys.
    keys = pending_keys(cfg)
    assert len(keys) == 2
    scramble_table_page(Path(cfg.journal.path), "requests", kind="internal")
    with Journal.open(cfg.journal.path) as journal:
        mended = journal.recovery
    assert mended is not None and mended.how == "salvaged", mended
    assert mended.salvaged["requests"] > 0 and mended.salvaged["outcomes"] > 0
    assert (mended.rows_lost, mended.unknown, mended.orphaned) == (0, [], 0)
    assert pending_keys(cfg) == keys
    assert day_figures(cli, conf) == waiting
    assert desk.scan_receipt(a).word == "already_checked"  # still known: not served twice
    refbackend.resume()
    other.check(f)  # counter-2 checked F online meanwhile: a conflict once uploaded

    d_tx, d = mint(DEMO_VENUE, 6000)
    e_tx, e = mint(DEMO_VENUE, 7000)
    refbackend.faults.delay_s = 1.0  # the backend answers too late for the counter
    assert desk.scan_receipt(d).word == "needs_network"
    assert desk.scan_receipt(e).word == "needs_network"
    refbackend.faults.delay_s = 0.0
    checked_at_backend(refbackend, d_tx)
    checked_at_backend(refbackend, e_tx)
    run(cli, "sync", "--config", conf)  # uploads B and F, and the late answers land
    mid_day = day_figures(cli, conf)
    failed_update(cfg, monkeypatch)
    assert day_figures(cli, conf) == mid_day
    assert desk.scan_receipt(d).word == "checked"  # D's customer comes back: served
    with flow_context(cfg) as ctx:
        assert payment.cancel(ctx, a_tx, "wrong customer").word == "cancelled"
    run(cli, "sync", "--config", conf)

    summary = json.loads(run(cli, "history", "--config", conf, "--local", "--summary", "--json"))
    assert summary["receipts"] == {
        "count": 4,  # A, B, D, E
        "cents": 6500 + 5500 + 6000 + 7000,
        "offline": {"count": 1, "cents": 5500},  # F became a conflict
    }
    assert summary["charges"] == {"count": 1, "cents": 5500}
    assert summary["cancels"] == {"count": 1, "cents": 6500}
    assert summary["total_cents"] == 25000 + 5500 - 6500
    assert summary["waiting_upload"] == {"count": 0, "cents": 0}
    assert summary["conflicts"] == {"count": 1, "cents": 3000}
    assert summary["late_answers"] == {"count": 1, "cents": 7000}  # E: never seen
    assert summary["services"] == [
        {"service": "Urheiluhieronta 45 min", "count": 2, "cents": 11000},  # B, the charge
    ]
    assert summary["unmatched"] == {"count": 2, "cents": 13000}  # D, E: no such price
    services = sum(s["cents"] for s in summary["services"]) + summary["unmatched"]["cents"]
    assert services == summary["total_cents"]

    # The staff's report screen reads the same figures.
    with flow_context(cfg) as ctx:
        screen = tech.day_report(ctx)
    screen_doc = screen.figures.as_json()
    assert screen_doc == {k: summary[k] for k in screen_doc}

    # The CSV: one row of money per transaction, the same total.
    out = run(cli, "history", "--config", conf, "--local", "--csv")
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    money = [r for r in rows if r["money_eur"]]
    total = sum(Decimal(r["money_eur"]) for r in money)
    assert total == Decimal(summary["total_cents"]) / 100
    paid = [r["tx"] for r in money if Decimal(r["money_eur"]) > 0]
    assert sorted(paid) == sorted([a_tx, b_tx, d_tx, e_tx, charged.tx])  # once each
    assert [r["tx"] for r in money if Decimal(r["money_eur"]) < 0] == [a_tx]
    assert {r["tx"] for r in rows if r["late_answer"] == "yes"} == {e_tx}
    assert not [r for r in rows if r["tx"] in (c_tx, f_tx) and r["money_eur"]]

    # The backend: what this device checked or charged and is not cancelled.
    doc = json.loads(run(cli, "history", "--config", conf, "--json", "--since", "today"))
    ours = [
        i
        for i in doc["items"]
        if i["device"] == "counter-1" and i["status"] in ("checked", "charged")
    ]
    assert sum(i["amount_cents"] for i in ours) == summary["total_cents"]
    assert sorted(i["tx"] for i in ours) == sorted([b_tx, d_tx, e_tx, charged.tx])
    cancelled = [i["tx"] for i in doc["items"] if i["status"] == "cancelled"]
    assert cancelled == [a_tx]
    remote = run(cli, "history", "--config", conf, "--csv", "--since", "today")
    remote_rows = list(csv.DictReader(io.StringIO(remote, newline="")))
    counted = [r for r in remote_rows if r["device"] == "counter-1" and r["money_eur"]]
    assert sum(Decimal(r["money_eur"]) for r in counted) == total

    # Every receipt this kiosk accepted was checked once at the backend (one 200 answer).
    checks: dict[str, int] = {}
    conn = sqlite3.connect(f"file:{refbackend.db}?mode=ro", uri=True, timeout=5.0)
    try:
        for code, body in conn.execute(
            "SELECT code, body FROM idempotency WHERE client = ?", (demo_client[0],)
        ):
            answer = json.loads(body)
            if code == 200 and answer.get("status") == "checked":
                checks[answer["tx"]] = checks.get(answer["tx"], 0) + 1
    finally:
        conn.close()
    assert checks == {a_tx: 1, b_tx: 1, d_tx: 1, e_tx: 1}

    text = run(cli, "history", "--config", conf, "--local", "--summary")
    assert "Day report of counter-1" in text
    assert f"{summary['total_cents'] / 100:.2f}" in text.splitlines()[5]


def test_summary_needs_local(cli: Any, counter: Any) -> None:
    code, _, err = cli("history", "--config", counter.cfg.source, "--summary")
    assert code == 2 and "--local" in err
