"""The reference payment backend: the backend contract over real HTTP, on SQLite.

Public API::

    with ReferenceBackend(db=tmp / "backend.db") as backend:
        client_id, secret = backend.create_client(DEMO_VENUE)
        tx, token = backend.mint_receipt(DEMO_VENUE, 6500)
        backend.faults.error_500 = 1          # the next /v1 request answers 500
        backend.pause(); backend.resume()     # network down and back, same port

    ReferenceBackend(db, tls=tls_context(cert, key))  # HTTPS (url starts with https://)
"""

from refbackend.accounts import DEMO_VENUE
from refbackend.errors import BackendError
from refbackend.faults import Faults
from refbackend.server import DEFAULT_ISSUER, ReferenceBackend, tls_context

__all__ = [
    "DEFAULT_ISSUER",
    "DEMO_VENUE",
    "BackendError",
    "Faults",
    "ReferenceBackend",
    "tls_context",
]
