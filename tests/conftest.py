"""Fixtures shared by every test: a running reference backend and a client of it.

- ``refbackend``: a started ``ReferenceBackend`` on 127.0.0.1 (free port), tmp database,
  ``--dev`` on; stopped after the test.
- ``demo_client``: ``(client_id, client_secret)`` bound to ``DEMO_VENUE``.
- ``get_bearer``: ``get_bearer(url, client_id, secret) -> access token`` over real HTTP.
- ``demo_bearer``: an access token of ``demo_client``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

# pytest puts tests/ on sys.path for this file; tests/kiosk (no __init__.py) would then be taken
# for the `kiosk` package when pytest is started as `.venv/bin/pytest`. The project root first
# makes `import kiosk` find the real package however pytest is started.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from refbackend import DEMO_VENUE, ReferenceBackend  # noqa: E402

HTTP_TIMEOUT = (2.0, 10.0)


@pytest.fixture
def refbackend(tmp_path: Path) -> Iterator[ReferenceBackend]:
    with ReferenceBackend(tmp_path / "backend.db", host="127.0.0.1", port=0, dev=True) as backend:
        yield backend


@pytest.fixture
def demo_client(refbackend: ReferenceBackend) -> tuple[str, str]:
    return refbackend.create_client(DEMO_VENUE)


def fetch_bearer(url: str, client_id: str, secret: str) -> str:
    """An access token by the OAuth client-credentials grant; fails the test otherwise."""
    resp = requests.post(
        f"{url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=HTTP_TIMEOUT,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


@pytest.fixture
def get_bearer() -> Callable[[str, str, str], str]:
    return fetch_bearer


@pytest.fixture
def demo_bearer(refbackend: ReferenceBackend, demo_client: tuple[str, str]) -> str:
    return fetch_bearer(refbackend.url, *demo_client)
