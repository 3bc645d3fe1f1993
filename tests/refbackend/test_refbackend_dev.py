"""The --dev endpoints (loopback only) and the in-process twins of them."""

from __future__ import annotations

import json

import pytest
import requests

from kiosk.tokens import KeySet, Paycode, Receipt, verify
from refbackend import DEMO_VENUE, ReferenceBackend
from refbackend.app import App
from refbackend.dev import is_loopback
from refbackend.faults import Faults
from refbackend.keys import key_path_for, load_or_create
from refbackend.store import Store
from refbackend.wire import Request

T = (2.0, 10.0)


@pytest.mark.parametrize(
    ("addr", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("192.0.2.10", False),
        ("10.0.0.1", False),
        ("::ffff:192.0.2.10", False),
        ("fe80::1%eth0", False),
        ("localhost", False),
        ("", False),
    ],
)
def test_is_loopback(addr, loopback):
    assert is_loopback(addr) is loopback


def test_dev_endpoints_refuse_clients_that_are_not_loopback(tmp_path):
    store = Store(tmp_path / "d.db")
    key = load_or_create(key_path_for(store.path))
    app = App(
        store,
        key,
        issuer="i",
        clock=lambda: 1.8e9,
        token_ttl_s=60,
        rate_limit_per_s=100,
        dev_mode=True,
        faults=Faults(),
    )
    body = json.dumps({"venue": DEMO_VENUE, "amount_cents": 6500}).encode()

    def ask(addr: str):
        return app.handle(Request("POST", "/dev/receipts", "", {}, body, addr))

    remote = ask("192.0.2.10")
    assert remote.code == 403
    assert remote.body == {"status": "forbidden", "message": remote.body["message"]}
    assert ask("::ffff:127.0.0.1").code == 200
    assert ask("127.0.0.1").code == 200
    store.close()


def _dev(url: str, path: str, body: object) -> requests.Response:
    return requests.post(f"{url}/dev/{path}", json=body, timeout=T)


def test_dev_receipt_and_paycode_over_http(refbackend):
    keys = KeySet.from_jwks(refbackend.jwks())
    resp = _dev(refbackend.url, "receipts", {"venue": DEMO_VENUE, "amount_cents": 4200})
    assert resp.status_code == 200
    assert set(resp.json()) == {"tx", "token"}
    receipt = verify(resp.json()["token"], keys, refbackend.issuer, now=0, clock_trusted=False)
    assert isinstance(receipt, Receipt)
    assert (receipt.tx, receipt.amount_cents, receipt.benefit) == (
        resp.json()["tx"],
        4200,
        "massage",
    )
    assert receipt.venue_name == "Hierontastudio Demo"
    resp = _dev(refbackend.url, "paycodes", {"balance_cents": 9000, "ben": "exercise", "ttl_s": 60})
    assert set(resp.json()) == {"jti", "code", "token"}
    paycode = verify(resp.json()["token"], keys, refbackend.issuer, now=0, clock_trusted=False)
    assert isinstance(paycode, Paycode)
    assert paycode.code == resp.json()["code"]
    assert paycode.expires_at - paycode.issued_at == 60
    assert paycode.benefit == "exercise"


def test_dev_venue_and_client_over_http(refbackend, get_bearer):
    services = [{"id": "thai-90", "name": "Thai 90", "price_cents": 9000, "eligible": True}]
    resp = _dev(
        refbackend.url, "venues", {"name": "Uusi", "address": "Tie 1", "services": services}
    )
    assert resp.status_code == 200
    venue = resp.json()
    assert venue["id"].startswith("ven_")
    assert venue["services"] == [services[0] | {"benefit": "massage"}]
    client = _dev(refbackend.url, "clients", {"venue": venue["id"]}).json()
    bearer = get_bearer(refbackend.url, client["client_id"], client["client_secret"])
    resp = requests.get(
        f"{refbackend.url}/v1/venues/{venue['id']}",
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=T,
    )
    assert resp.json() == venue
    default = _dev(refbackend.url, "venues", {"name": "Oletus", "address": "Tie 2"}).json()
    assert [s["id"] for s in default["services"]] == ["classic-60", "sports-45", "hotstone-60"]


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("receipts", {"venue": DEMO_VENUE}, 400),
        ("receipts", {"venue": DEMO_VENUE, "amount_cents": 0}, 400),
        ("receipts", {"venue": DEMO_VENUE, "amount_cents": 10**12}, 400),
        ("receipts", {"venue": DEMO_VENUE, "amount_cents": 100, "ben": "beer"}, 400),
        ("receipts", {"venue": "ven_nowhere", "amount_cents": 100}, 404),
        ("paycodes", {"balance_cents": -1}, 400),
        ("paycodes", {"balance_cents": 100, "ttl_s": 0}, 400),
        ("clients", {"venue": "ven_nowhere"}, 404),
        ("venues", {"name": "x"}, 400),
        ("venues", {"name": "x", "address": "y", "services": [{"id": "a b"}]}, 400),
        ("nothing", {}, 404),
    ],
)
def test_dev_endpoints_check_their_input(refbackend, path, body, code):
    resp = _dev(refbackend.url, path, body)
    assert resp.status_code == code
    assert set(resp.json()) == {"status", "message"}


def test_in_process_twins_raise_value_error(refbackend):
    with pytest.raises(ValueError, match="amount_cents"):
        refbackend.mint_receipt(DEMO_VENUE, 0)
    with pytest.raises(ValueError, match="no venue"):
        refbackend.create_client("ven_nowhere")
    codes = {refbackend.mint_paycode(100)["code"] for _ in range(20)}
    assert len(codes) == 20


def test_without_dev_mode_there_are_no_dev_endpoints(tmp_path):
    with ReferenceBackend(tmp_path / "p.db", dev=False) as backend:
        resp = _dev(backend.url, "receipts", {"venue": DEMO_VENUE, "amount_cents": 100})
        assert resp.status_code == 404
        assert requests.get(f"{backend.url}/.well-known/jwks.json", timeout=T).status_code == 200
