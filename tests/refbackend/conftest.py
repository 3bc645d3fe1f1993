"""Helpers for the reference backend's contract tests: an HTTP caller and a settable clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from refbackend import DEMO_VENUE, ReferenceBackend

TIMEOUT = (2.0, 10.0)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def at(text: str) -> float:
    """Unix seconds of an ISO date-time with offset."""
    return datetime.fromisoformat(text).timestamp()


class Api:
    """Calls one backend as one client over real HTTP."""

    def __init__(self, backend: ReferenceBackend, client: tuple[str, str]) -> None:
        self.backend = backend
        self.url = backend.url
        self.client = client
        self.session = requests.Session()
        self.token = self.fresh_token()

    def fresh_token(self) -> str:
        resp = self.session.post(
            f"{self.url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=self.client,
            timeout=TIMEOUT,
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["access_token"])

    def headers(self, key: str | None = None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.token}"}
        if key is not None:
            h["Idempotency-Key"] = key
        return h

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(
            self.url + path, params=params, headers=self.headers(), timeout=TIMEOUT
        )

    def post(self, path: str, body: Any, key: str | None = None) -> requests.Response:
        return self.session.post(
            self.url + path,
            json=body,
            headers=self.headers(key or str(uuid.uuid4())),
            timeout=TIMEOUT,
        )

    def check(
        self,
        token: str,
        *,
        offline: bool = False,
        device: str = "counter-1",
        venue: str = DEMO_VENUE,
        key: str | None = None,
    ) -> requests.Response:
        body = {
            "token": token,
            "venue": venue,
            "device": device,
            "scanned_at": "2026-11-24T09:15:02Z",
            "offline": offline,
        }
        return self.post("/v1/receipts/check", body, key)

    def charge(
        self, paycode: str, service: str = "classic-60", amount: int = 6500, key: str | None = None
    ) -> requests.Response:
        body = {
            "paycode": paycode,
            "venue": DEMO_VENUE,
            "device": "counter-1",
            "service": service,
            "amount_cents": amount,
        }
        return self.post("/v1/charges", body, key)

    def cancel(self, tx: str, key: str | None = None) -> requests.Response:
        return self.post(f"/v1/transactions/{tx}/cancel", {"reason": "mistake"}, key)

    def history(self, **params: Any) -> requests.Response:
        return self.get(f"/v1/venues/{DEMO_VENUE}/transactions", **params)


@pytest.fixture
def api(refbackend: ReferenceBackend, demo_client: tuple[str, str]) -> Iterator[Api]:
    caller = Api(refbackend, demo_client)
    yield caller
    caller.session.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(at("2026-11-24T10:00:00+02:00"))


@pytest.fixture
def clocked(tmp_path: Path, clock: Clock) -> Iterator[tuple[Api, Clock]]:
    """A backend whose clock the test moves, and a caller of it."""
    with ReferenceBackend(tmp_path / "clocked.db", clock=clock, token_ttl_s=3600) as backend:
        caller = Api(backend, backend.create_client(DEMO_VENUE))
        yield caller, clock
        caller.session.close()
