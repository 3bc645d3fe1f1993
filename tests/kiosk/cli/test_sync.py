"""`kiosk sync`: uploads what the journal owes; exit 0 only when nothing is left."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from kiosk.journal import Journal
from refbackend import DEMO_VENUE, ReferenceBackend


def backend_status(backend: ReferenceBackend, client: tuple[str, str], tx: str) -> dict:
    token = requests.post(
        f"{backend.url}/oauth/token", data={"grant_type": "client_credentials"}, auth=client,
        timeout=5,
    ).json()["access_token"]  # fmt: skip
    resp = requests.get(
        f"{backend.url}/v1/venues/{DEMO_VENUE}/transactions",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    return {i["tx"]: i for i in resp.json()["items"]}[tx]


def test_sync_exit_status_follows_what_is_left(
    cli: Any, counter: Any, refbackend: ReferenceBackend, demo_client: tuple[str, str]
) -> None:
    config = Path(counter.cfg.source)
    assert counter.scan_receipt(refbackend.mint_receipt(DEMO_VENUE, 1000)[1]).word == "checked"
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 3000)
    refbackend.pause()
    assert counter.scan_receipt(token).word == "checked_offline"

    code, out, _ = cli("sync", "--config", str(config))
    assert code == 1
    assert "left 1" in out and "stopped:" in out

    refbackend.resume()
    code, out, _ = cli("sync", "--config", str(config), "--json")
    assert code == 0
    report = json.loads(out)
    assert (report["uploaded"], report["remaining"], report["conflicts"]) == (1, 0, 0)
    item = backend_status(refbackend, demo_client, tx)
    assert (item["status"], item["offline"]) == ("checked", True)
    with Journal.open(counter.cfg.journal.path) as journal:
        assert journal.pending_count() == 0
        assert [(o.outcome, o.synced) for o in journal.outcomes() if o.tx == tx] == [
            ("checked_offline", True)
        ]

    code, out, _ = cli("sync", "--config", str(config))
    assert code == 0 and "uploaded 0" in out


def test_a_request_the_backend_keeps_refusing_is_quarantined_and_the_rest_uploaded(
    cli: Any, kiosk_toml: Any, counter: Any, refbackend: ReferenceBackend
) -> None:
    config = kiosk_toml(journal={"quarantine_after": 2})  # the file the counter uses
    assert counter.scan_receipt(refbackend.mint_receipt(DEMO_VENUE, 1000)[1]).word == "checked"
    with Journal.open(counter.cfg.journal.path) as journal:
        bad = journal.begin(  # a charge the backend refuses as malformed (400) every time
            "charge", json.dumps({"paycode": "123456789012"}), ref="123456789012", now=0.0
        ).id
    refbackend.pause()
    for cents in (1200, 1300):
        token = refbackend.mint_receipt(DEMO_VENUE, cents)[1]
        assert counter.scan_receipt(token).word == "checked_offline"
    refbackend.resume()

    code, out, _ = cli("sync", "--config", str(config), "--json")
    report = json.loads(out)
    assert code == 1
    assert (report["uploaded"], report["failed"], report["remaining"]) == (2, 1, 1)
    code, out, _ = cli("sync", "--config", str(config))
    assert code == 1 and "quarantined 1" in out

    code, out, _ = cli("status", "--config", str(config), "--json")
    status = json.loads(out)
    assert (status["pending"], status["quarantined"], status["offline_count"]) == (0, 1, 0)
    with Journal.open(counter.cfg.journal.path) as journal:
        assert journal.request(bad).state == "quarantined"
