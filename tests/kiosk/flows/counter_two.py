"""Another counter of the studio: receipts it checked first (the conflict tests).

The other counter's client is the ``other_counter`` fixture (conftest.py).
"""

from __future__ import annotations

import uuid

from kiosk.backend.client import BackendClient
from refbackend import DEMO_VENUE, ReferenceBackend


def checked_elsewhere(backend: ReferenceBackend, other: BackendClient, amount_cents: int) -> str:
    """A fresh receipt's token, checked at the other counter (online) first."""
    _, token = backend.mint_receipt(DEMO_VENUE, amount_cents)
    body = {
        "token": token,
        "venue": DEMO_VENUE,
        "device": "counter-2",
        "scanned_at": "2026-11-30T10:00:00Z",
        "offline": False,
    }
    assert other.check_receipt(str(uuid.uuid4()), body).status == "checked"
    return token
