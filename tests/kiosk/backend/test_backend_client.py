"""BackendClient against the reference backend over real HTTP, and its pure wire helpers."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from kiosk.backend._exchange import parse_retry_after
from kiosk.backend._wire import format_time, parse_time
from kiosk.backend.client import BackendClient, HistoryItem, Timeouts
from kiosk.config import Secret, parse_config
from kiosk.errors import (
    BackendAuthError,
    BackendBusy,
    BackendProtocolError,
    BackendUnreachable,
    OutcomeUnknown,
)
from kiosk.tokens import KeySet
from refbackend import DEMO_VENUE, ReferenceBackend

QUICK = Timeouts(connect=1.0, read=2.0, total=4.0)
DEVICE = "counter-1"


def key() -> str:
    return str(uuid.uuid4())


def now_text() -> str:
    return format_time(datetime.now(UTC))


def check_body(token: str, *, offline: bool = False) -> dict[str, object]:
    return {"token": token, "venue": DEMO_VENUE, "device": DEVICE, "scanned_at": now_text(),
            "offline": offline}  # fmt: skip


def charge_body(paycode: str, service: str = "classic-60", amount: int = 6500) -> dict[str, object]:
    return {"paycode": paycode, "venue": DEMO_VENUE, "device": DEVICE, "service": service,
            "amount_cents": amount}  # fmt: skip


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def client_for(
    backend: ReferenceBackend, session: requests.Session, creds: tuple[str, str] | None = None
) -> BackendClient:
    client_id, secret = creds or backend.create_client(DEMO_VENUE)
    return BackendClient(
        backend.url, client_id=client_id, client_secret=Secret(secret), session=session,
        timeouts=QUICK,
    )  # fmt: skip


@pytest.fixture
def client(refbackend: ReferenceBackend, session: requests.Session) -> Iterator[BackendClient]:
    with client_for(refbackend, session) as c:
        yield c


# --- receipts -------------------------------------------------------------------------------


def test_receipt_checked_then_already_checked(refbackend, client):
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    first = client.check_receipt(key(), check_body(token))
    assert (first.status, first.http_status, first.tx, first.amount_cents) == (
        "checked", 200, tx, 6500)  # fmt: skip
    assert first.venue_name == "Hierontastudio Demo" and first.checked_by == DEVICE
    assert first.paid_at is not None and first.paid_at.tzinfo is not None
    assert first.checked_at is not None and abs(
        first.checked_at - datetime.now(UTC)) < timedelta(seconds=5)  # fmt: skip
    again = client.check_receipt(key(), check_body(token))
    assert (again.status, again.http_status, again.tx) == ("already_checked", 409, tx)
    assert again.checked_at == first.checked_at and again.checked_by == DEVICE


def test_same_key_replays_the_first_answer(refbackend, client):
    _, token = refbackend.mint_receipt(DEMO_VENUE, 5500)
    k, body = key(), check_body(token)
    first = client.check_receipt(k, body)
    assert client.check_receipt(k, body) == first  # replay, not already_checked
    with pytest.raises(BackendProtocolError, match="idempotency_mismatch"):
        client.check_receipt(k, {**body, "device": "counter-2"})


def test_cancelled_receipt(refbackend, client):
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert client.cancel(tx, key(), {"reason": "flawed payment"}).status == "cancelled"
    result = client.check_receipt(key(), check_body(token))
    assert (result.status, result.http_status) == ("cancelled", 410)


def test_receipt_of_another_venue(refbackend, client):
    other = refbackend.create_venue("Toinen Studio", "Muukatu 2, 00200 Helsinki")
    _, token = refbackend.mint_receipt(other["id"], 6500)
    result = client.check_receipt(key(), check_body(token))
    assert (result.status, result.http_status) == ("wrong_venue", 403)
    assert result.venue_name == "Toinen Studio"


def test_invalid_receipt(refbackend, client):
    _, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    head, payload, sig = token.split(".")
    forged = f"{head}.{payload}.{sig[:-4]}AAAA"
    result = client.check_receipt(key(), check_body(forged))
    assert (result.status, result.http_status) == ("invalid", 422)
    assert result.reason and result.message


def test_offline_upload_of_a_receipt_checked_elsewhere_is_a_conflict(refbackend, client):
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert client.check_receipt(key(), check_body(token, offline=True)).status == "checked"
    late = client.check_receipt(key(), check_body(token, offline=True))
    assert late.status == "already_checked"
    page = client.history(DEMO_VENUE)
    (item,) = [i for i in page.items if i.tx == tx]
    assert item.offline and item.conflict and item.status == "checked"


# --- charges --------------------------------------------------------------------------------


def test_charge_statuses(refbackend, client):
    pc = refbackend.mint_paycode(10_000)
    charged = client.charge(key(), charge_body(pc["token"]))
    assert (charged.status, charged.http_status, charged.amount_cents) == ("charged", 201, 6500)
    assert charged.service == "classic-60" and charged.tx and charged.charged_at is not None
    used = client.charge(key(), charge_body(pc["token"]))
    assert (used.status, used.http_status) == ("paycode_used", 409)

    poor = refbackend.mint_paycode(1_000)
    short = client.charge(key(), charge_body(poor["code"]))  # bare 12 digits
    assert (short.status, short.http_status, short.balance_cents) == (
        "insufficient_funds", 402, 1_000)  # fmt: skip

    rich = refbackend.mint_paycode(10_000)
    hot = client.charge(key(), charge_body(rich["token"], "hotstone-60", 7500))
    assert (hot.status, hot.http_status) == ("not_eligible", 422)
    wrong = client.charge(key(), charge_body(rich["token"], "classic-60", 1))
    assert (wrong.status, wrong.http_status, wrong.reason) == ("invalid", 422, "amount_mismatch")
    sports = client.charge(key(), charge_body(rich["code"], "sports-45", 5500))
    assert sports.status == "charged"


def test_expired_paycode_and_refreshed_token(tmp_path: Path, session, caplog):
    clock = [time.time()]
    with ReferenceBackend(tmp_path / "b.db", clock=lambda: clock[0], token_ttl_s=600) as backend:
        client = client_for(backend, session)
        pc = backend.mint_paycode(10_000, ttl_s=60)
        client.get_venue(DEMO_VENUE)  # token cached
        clock[0] += 3600  # the paycode and the cached access token both expire
        with caplog.at_level(logging.INFO, "kiosk.backend"):
            expired = client.charge(key(), charge_body(pc["token"]))
        assert (expired.status, expired.http_status) == ("paycode_expired", 410)
        assert any("fetching a new one" in r.getMessage() for r in caplog.records)


# --- cancels, venue, history, keys ------------------------------------------------------------


def test_cancel_statuses(refbackend, client):
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    client.check_receipt(key(), check_body(token))
    done = client.cancel(tx, key(), {"reason": "wrong service"})
    assert (done.status, done.http_status, done.tx) == ("cancelled", 200, tx)
    twice = client.cancel(tx, key(), {"reason": "again"})
    assert (twice.status, twice.reason) == ("not_cancellable", "already_cancelled")
    old, _ = refbackend.mint_receipt(DEMO_VENUE, 6500, paid_at=time.time() - 3 * 86400)
    late = client.cancel(old, key(), {"reason": "too late"})
    assert (late.status, late.http_status, late.reason) == ("not_cancellable", 409, "not_same_day")
    missing = client.cancel("tx_0000000000000000", key(), {"reason": "x"})
    assert (missing.status, missing.http_status) == ("not_found", 404)


def test_venue_of_the_demo_studio(client):
    venue = client.get_venue(DEMO_VENUE)
    assert venue.name == "Hierontastudio Demo" and venue.address.endswith("Helsinki")
    prices = {s.id: (s.price_cents, s.eligible) for s in venue.services}
    assert prices == {"classic-60": (6500, True), "sports-45": (5500, True),
                      "hotstone-60": (7500, False)}  # fmt: skip
    with pytest.raises(BackendAuthError):
        client.get_venue("ven_other000000000")


def test_history_pages(refbackend, client):
    txs = []
    for amount in (1000, 2000, 3000):
        tx, token = refbackend.mint_receipt(DEMO_VENUE, amount)
        client.check_receipt(key(), check_body(token))
        txs.append(tx)
    seen: list[HistoryItem] = []
    cursor = None
    for _ in range(5):
        page = client.history(DEMO_VENUE, limit=2, cursor=cursor,
                              since=datetime.now(UTC) - timedelta(hours=1))  # fmt: skip
        seen += page.items
        cursor = page.next
        if cursor is None:
            break
    assert [i.tx for i in seen] == txs[::-1]  # newest first
    assert all(i.kind == "receipt" and i.device == DEVICE and not i.conflict for i in seen)


def test_keys_and_ping(refbackend, client):
    doc = client.fetch_jwks()
    assert doc == refbackend.jwks()
    assert len(KeySet.from_jwks(doc)) == 1
    client.ping()


def test_wrong_secret_is_an_auth_error(refbackend, session):
    client_id, _ = refbackend.create_client(DEMO_VENUE)
    client = BackendClient(refbackend.url, client_id=client_id, client_secret=Secret("nope"),
                           session=session, timeouts=QUICK)  # fmt: skip
    with pytest.raises(BackendAuthError, match="client_secret_file"):
        client.ping()


# --- faults of the reference backend ----------------------------------------------------------


def test_drop_after_commit_is_unknown_and_the_retry_gets_the_answer(refbackend, client):
    tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    k, body = key(), check_body(token)
    client.get_venue(DEMO_VENUE)
    refbackend.faults.drop_after_commit = 1
    with pytest.raises(OutcomeUnknown):
        client.check_receipt(k, body)
    result = client.check_receipt(k, body)
    assert (result.status, result.tx) == ("checked", tx)  # not already_checked


def test_500_429_and_garbage(refbackend, client):
    _, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    client.get_venue(DEMO_VENUE)
    refbackend.faults.error_500 = 1
    with pytest.raises(OutcomeUnknown):
        client.check_receipt(key(), check_body(token))
    refbackend.faults.rate_limit = 1
    with pytest.raises(BackendBusy) as err:  # a 429 processed nothing
        client.check_receipt(key(), check_body(token))
    assert err.value.retry_after == 1.0
    refbackend.faults.garbage = 1
    with pytest.raises(BackendProtocolError):
        client.check_receipt(key(), check_body(token))
    assert client.check_receipt(key(), check_body(token)).status == "checked"


def test_same_key_while_in_progress_is_unknown(refbackend, session):
    _, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    k, body = key(), check_body(token)
    creds = refbackend.create_client(DEMO_VENUE)
    first = client_for(refbackend, session, creds)
    second = client_for(refbackend, requests.Session(), creds)
    second.get_venue(DEMO_VENUE)
    refbackend.faults.delay_s = 0.5
    results = []
    worker = threading.Thread(target=lambda: results.append(first.check_receipt(k, body)))
    worker.start()
    try:
        assert refbackend.faults.delaying.wait(2)
        with pytest.raises(OutcomeUnknown) as err:
            second.check_receipt(k, body)
        assert err.value.retry_after is not None
    finally:
        worker.join(timeout=3)
        second._session.close()
    assert [r.status for r in results] == ["checked"]


def test_paused_backend_is_unreachable(refbackend, client):
    client.get_venue(DEMO_VENUE)
    refbackend.pause()
    try:
        with pytest.raises(BackendUnreachable):
            client.get_venue(DEMO_VENUE)
    finally:
        refbackend.resume()
    assert client.get_venue(DEMO_VENUE).id == DEMO_VENUE


def test_from_config_owns_its_session(refbackend, tmp_path):
    client_id, secret = refbackend.create_client(DEMO_VENUE)
    raw = {"device": {"id": DEVICE, "venue": DEMO_VENUE},
           "backend": {"url": refbackend.url, "client_id": client_id,
                       "client_secret_file": "secret", "issuer": refbackend.issuer,
                       "connect_timeout": 1.5, "read_timeout": 3.0}}  # fmt: skip
    cfg = dataclasses.replace(parse_config(raw, read_secret=False), client_secret=Secret(secret))
    with BackendClient.from_config(cfg) as client:
        assert client.get_venue(DEMO_VENUE).id == DEMO_VENUE
        assert client._timeouts == Timeouts(1.5, 3.0, 10.0)
        session = client._session
    assert client.closed
    adapter = session.get_adapter(refbackend.url)
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    assert not adapter.poolmanager.pools  # closed with the client


# --- pure helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2026-11-24T09:15:02Z", datetime(2026, 11, 24, 9, 15, 2, tzinfo=UTC)),
     ("2026-11-24t09:15:02z", datetime(2026, 11, 24, 9, 15, 2, tzinfo=UTC)),
     ("2026-11-24T11:15:02.250+02:00", datetime(2026, 11, 24, 9, 15, 2, 250000, tzinfo=UTC))],
)  # fmt: skip
def test_parse_time(text, expected):
    parsed = parse_time(text)
    assert parsed == expected and parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text", ["2026-11-24T09:15:02", "2026-11-24", "1790000000", "", None, 1790000000,
             "2026-13-24T09:15:02Z", "2026-11-24T09:15:02+0200", " 2026-11-24T09:15:02Z"],
)  # fmt: skip
def test_parse_time_rejects(text):
    with pytest.raises(ValueError):
        parse_time(text)


def test_format_time():
    helsinki = timezone(timedelta(hours=2))
    assert format_time(datetime(2026, 11, 24, 11, 15, 2, tzinfo=helsinki)) == "2026-11-24T09:15:02Z"
    with pytest.raises(ValueError):
        format_time(datetime(2026, 11, 24, 11, 15, 2))


@pytest.mark.parametrize(
    ("header", "expected"),
    [("5", 5.0), (" 12 ", 12.0), ("61", 60.0), ("-3", None), ("1.5", None), ("", None),
     ("Tue, 24 Nov 2026 09:15:32 GMT", 30.0), ("Tue, 24 Nov 2026 09:14:00 GMT", 0.0),
     ("Tue, 24 Nov 2026 19:00:00 GMT", 60.0), ("not a date", None)],
)  # fmt: skip
def test_parse_retry_after(header, expected):
    now = datetime(2026, 11, 24, 9, 15, 2, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == expected


# --- the session: the environment read once, not on every request ---------------------------


def config_client(refbackend: ReferenceBackend) -> BackendClient:
    client_id, secret = refbackend.create_client(DEMO_VENUE)
    raw = {"device": {"id": DEVICE, "venue": DEMO_VENUE},
           "backend": {"url": refbackend.url, "client_id": client_id,
                       "client_secret_file": "secret", "issuer": refbackend.issuer}}  # fmt: skip
    cfg = dataclasses.replace(parse_config(raw, read_secret=False), client_secret=Secret(secret))
    return BackendClient.from_config(cfg)


def test_a_netrc_entry_for_the_backend_never_replaces_the_bearer_token(
    refbackend: ReferenceBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password something\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with config_client(refbackend) as client:
        assert client.get_venue(DEMO_VENUE).id == DEMO_VENUE
        with client.fork() as twin:
            assert twin.get_venue(DEMO_VENUE).id == DEMO_VENUE


def test_the_proxy_of_the_environment_is_still_used(
    refbackend: ReferenceBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    with config_client(refbackend) as client, pytest.raises(BackendUnreachable):
        client.get_venue(DEMO_VENUE)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with config_client(refbackend) as client:
        assert client.get_venue(DEMO_VENUE).id == DEMO_VENUE
