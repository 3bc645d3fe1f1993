"""The shapes of SmartumPay codes, without verifying anything (a leaf: no PyJWT).

Used by :mod:`kiosk.tokens` before it verifies a token, and by :mod:`kiosk.decode`
to rank decoded texts, so the camera reader does not pull in the JWT stack.
"""

from __future__ import annotations

import re

__all__ = [
    "BENEFITS",
    "CODE_SHAPE",
    "JWS_SHAPE",
    "MAX_TOKEN_BYTES",
    "PAYCODE_ID_SHAPE",
    "PAYCODE_TYP",
    "RECEIPT_TYP",
    "TX_SHAPE",
    "VENUE_SHAPE",
    "looks_like_jws",
    "looks_like_token",
    "stripped",
]

MAX_TOKEN_BYTES = 2048
BENEFITS = ("massage", "exercise")
"""The benefits a token's ``ben`` claim may name (the first is ``kiosk mint``'s default)."""
RECEIPT_TYP = "smartum-receipt+jwt"
PAYCODE_TYP = "smartum-paycode+jwt"
JWS_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
CODE_SHAPE = re.compile(r"[0-9]{12}")
TX_SHAPE = re.compile(r"tx_[0-9A-Za-z]{16}")
PAYCODE_ID_SHAPE = re.compile(r"pc_[0-9A-Za-z]{16}")
VENUE_SHAPE = re.compile(r"ven_[0-9A-Za-z]{1,64}")


def stripped(text: str) -> str:
    """A scanned text without the blanks and line ends readers add around it."""
    return text.strip(" \t\r\n")


def looks_like_jws(text: str) -> bool:
    """True for a (stripped) text shaped like a compact JWS, however bad."""
    if len(text) > MAX_TOKEN_BYTES:
        # Long text with the two dots of a JWS is a (bad) token, not a stray code.
        return text.count(".") == 2 and text.startswith("eyJ")
    return bool(JWS_SHAPE.fullmatch(text)) or (text.count(".") == 2 and text.startswith("eyJ"))


def looks_like_token(text: str) -> bool:
    """True when *text* has the shape of a SmartumPay token (JWS or 12-digit code)."""
    text = stripped(text)
    return bool(CODE_SHAPE.fullmatch(text)) or looks_like_jws(text)
