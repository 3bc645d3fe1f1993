"""A final refusal the kiosk has been told decides every later scan of that receipt.

Attack: get "already checked at counter-2", pull the cable, scan again. The journal
knows the receipt is spent, so the rescan is refused from it, online or offline,
and the screen says what the backend said and when.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any as Sim

import requests

from kiosk.backend.client import BackendClient
from kiosk.config import Secret
from kiosk.journal import Journal
from kiosk.screens import i18n
from kiosk.screens.results import compose_result
from refbackend import DEMO_VENUE


@contextmanager
def counter_2(sim: Sim) -> Iterator[BackendClient]:
    """Another kiosk of the same studio, talking to the same backend."""
    client_id, secret = sim.backend.create_client(DEMO_VENUE)
    with BackendClient(
        sim.backend.url,
        client_id=client_id,
        client_secret=Secret(secret),
        session=requests.Session(),
    ) as other:
        yield other


def check_at_counter_2(sim: Sim, token: str) -> None:
    body = {
        "token": token,
        "venue": DEMO_VENUE,
        "device": "counter-2",
        "scanned_at": "2026-11-26T10:00:00Z",
        "offline": False,
    }
    with counter_2(sim) as other:
        assert other.check_receipt(str(uuid.uuid4()), body).status == "checked"


def backend_checks(sim: Sim, tx: str) -> list[sqlite3.Row]:
    return sim.backend_rows(
        "SELECT device, offline, conflict, state FROM transactions WHERE tx = ?", (tx,)
    )


def warm_up(sim: Sim) -> None:
    """One successful check: the offline age starts here, so offline acceptance is open."""
    _, warmup = sim.backend.mint_receipt(DEMO_VENUE, 1000)
    assert sim.scan(warmup).word == "checked"


def receipt_rows(sim: Sim, tx: str) -> list[tuple[str, str]]:
    with Journal.open(sim.cfg.journal.path) as journal:
        return [(r.outcome, r.reason) for r in journal.receipt_history(tx)]


def test_already_checked_elsewhere_is_not_accepted_offline_on_a_rescan(sim: Sim) -> None:
    warm_up(sim)
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 4500)
    check_at_counter_2(sim, token)
    first = sim.scan(token)
    assert (first.word, first.checked_by) == ("already_checked", "counter-2"), first
    sim.backend.pause()  # the cable is pulled
    sim.advance(0.35)  # past the repeat window
    again = sim.scan(token)
    assert again.word == "already_checked", again
    assert again.checked_by == "counter-2" and again.checked_at == first.checked_at
    assert again.told_at is not None
    sim.backend.resume()
    sim.advance(0.35)
    online = sim.scan(token)  # online too, the journal decides: nothing is sent
    assert (online.word, online.checked_by) == ("already_checked", "counter-2")
    sim.wait_synced()
    assert [r["device"] for r in backend_checks(sim, tx)] == ["counter-2"]
    assert "checked_offline" not in [w for w, _ in receipt_rows(sim, tx)]
    with Journal.open(sim.cfg.journal.path) as journal:
        assert journal.offline_exposure() == (0, 0)
        sent = journal.conn.execute(
            "SELECT COUNT(*) FROM requests WHERE tx = ? AND kind = 'receipt'", (tx,)
        ).fetchone()[0]
    assert sent == 1  # the first scan's check only
    # The screen says what the kiosk was told: already checked, when, by whom.
    texts = [ln.text for ln in compose_result(again, "en").lines]
    assert i18n.text("word.already_checked", "en") in texts
    assert any("counter-2" in t for t in texts), texts


def test_cancelled_receipt_is_refused_offline_with_when_the_kiosk_was_told(sim: Sim) -> None:
    warm_up(sim)
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 3000)
    with counter_2(sim) as other:  # cancelled in the web service before it was used
        assert other.cancel(tx, str(uuid.uuid4()), {"reason": "refund"}).status == "cancelled"
    first = sim.scan(token)
    assert first.word == "cancelled", first
    sim.backend.pause()
    sim.advance(0.35)
    again = sim.scan(token)
    assert (again.word, again.kind) == ("cancelled", "receipt"), again
    assert again.told_at is not None
    for lang in i18n.LANGUAGES:
        told = i18n.text("told_at", lang, time=i18n.format_time(again.told_at, lang))
        texts = " ".join(ln.text for ln in compose_result(again, lang).lines)
        assert told in texts, (lang, texts)
    assert [w for w, _ in receipt_rows(sim, tx)] == ["cancelled", "cancelled"]


def test_a_cancel_made_here_decides_the_rescan(sim: Sim) -> None:
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 2500)
    assert sim.scan(token).word == "checked"
    from kiosk.flows.payment import cancel

    ctx = sim.counter.open_context()
    try:  # as `kiosk cancel` does it
        assert cancel(ctx, tx, "wrong customer").word == "cancelled"
    finally:
        ctx.client.close()
        ctx.journal.close()
    sim.backend.pause()
    sim.advance(0.35)
    again = sim.scan(token)
    assert (again.word, again.kind, again.reason) == ("cancelled", "receipt", "local"), again
    assert again.told_at is not None


def test_invalid_at_the_backend_is_not_accepted_offline(sim: Sim) -> None:
    """The backend refuses as invalid a receipt the kiosk found well signed."""
    warm_up(sim)
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 2000)
    conn = sqlite3.connect(sim.backend.db, timeout=5.0)
    try:  # the payment behind the receipt no longer matches its claims
        with conn:
            conn.execute("UPDATE transactions SET amount_cents = 2100 WHERE tx = ?", (tx,))
    finally:
        conn.close()
    first = sim.scan(token)
    assert (first.word, first.reason) == ("invalid", "mismatch"), first
    sim.backend.pause()
    sim.advance(0.35)
    again = sim.scan(token)
    assert (again.word, again.reason) == ("invalid", "mismatch"), again
    assert again.told_at is not None
    assert [w for w, _ in receipt_rows(sim, tx)] == ["invalid", "invalid"]


def test_a_cancel_answered_already_cancelled_decides_the_rescan(sim: Sim) -> None:
    warm_up(sim)
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 2200)
    with counter_2(sim) as other:  # cancelled in the web service
        assert other.cancel(tx, str(uuid.uuid4()), {"reason": "refund"}).status == "cancelled"
    from kiosk.flows.payment import cancel

    ctx = sim.counter.open_context()
    try:  # `kiosk cancel` of it here: the backend says it is cancelled already
        assert cancel(ctx, tx, "refund").reason == "already_cancelled"
    finally:
        ctx.client.close()
        ctx.journal.close()
    sim.backend.pause()
    again = sim.scan(token)
    assert (again.word, again.kind) == ("cancelled", "receipt"), again
    assert "checked_offline" not in [w for w, _ in receipt_rows(sim, tx)]
