"""The reference backend's own words: token types and transaction kinds.

Independent of the firmware's vocabulary (the backend shares no code with the
kiosk, so each is tested against the other). Every decision on one of these is
a ``match`` ending in :func:`typing.assert_never`, so a new member makes mypy
name each place it must reach.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["TokenType", "TxKind"]


class TokenType(StrEnum):
    """The JWS ``typ`` of a token this backend issues (backend contract, section 1)."""

    RECEIPT = "smartum-receipt+jwt"
    PAYCODE = "smartum-paycode+jwt"


class TxKind(StrEnum):
    """A stored transaction's kind (``transactions.kind``, history's ``kind``)."""

    RECEIPT = "receipt"  # a payment the customer made elsewhere; a kiosk checks it
    CHARGE = "charge"  # a kiosk charged a payment code
