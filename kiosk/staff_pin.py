"""The staff PIN that allows cancelling on the device: hashed with scrypt, never stored.

A hash is one self-describing string in the PHC format,
``$scrypt$ln=14,r=8,p=1$<salt>$<key>`` (salt and key in base64 without padding),
so its cost can be raised later without breaking hashes already in the field.
A PIN is 4 to 8 digits: the buttons enter digits only. Its short length is why
the slow KDF matters and why the configuration file should not be world-readable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

SCHEME = "scrypt"
PIN_PATTERN = re.compile(r"[0-9]{4,8}")
LOG2_N, BLOCK_SIZE, PARALLELISM = 14, 8, 1  # 16 MiB of memory per try
SALT_BYTES, KEY_BYTES = 16, 32
_FORMAT = re.compile(
    r"\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{16,88})\$([A-Za-z0-9+/]{22,88})"
)
_LIMITS = {"ln": (10, 20), "r": (1, 32), "p": (1, 16)}  # a hash cannot demand unbounded memory


def pin_problem(pin: str) -> str:
    """Why *pin* is not a valid staff PIN, or "" when it is."""
    if not PIN_PATTERN.fullmatch(pin):
        return "a staff PIN is 4 to 8 digits (0-9)"
    return ""


def hash_pin(pin: str) -> str:
    """A new salted scrypt hash of *pin*. Raises ValueError for a PIN that is not 4-8 digits."""
    problem = pin_problem(pin)
    if problem:
        raise ValueError(problem)
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(pin, salt, LOG2_N, BLOCK_SIZE, PARALLELISM, KEY_BYTES)
    params = f"ln={LOG2_N},r={BLOCK_SIZE},p={PARALLELISM}"
    return f"${SCHEME}${params}${_b64(salt)}${_b64(key)}"


def verify_pin(pin: str, pin_hash: str) -> bool:
    """True when *pin* is the PIN *pin_hash* was made from (constant-time comparison).

    A malformed hash or PIN never matches.
    """
    parsed = _parse(pin_hash)
    if parsed is None or pin_problem(pin):
        return False
    ln, r, p, salt, key = parsed
    return hmac.compare_digest(_derive(pin, salt, ln, r, p, len(key)), key)


def hash_problem(pin_hash: str) -> str:
    """Why *pin_hash* is not a hash made by :func:`hash_pin`, or "" when it is one."""
    if _parse(pin_hash) is None:
        return "not a PIN hash; make one with: kiosk config pin-hash"
    return ""


def _parse(text: str) -> tuple[int, int, int, bytes, bytes] | None:
    match = _FORMAT.fullmatch(text)
    if match is None:
        return None
    ln, r, p = (int(g) for g in match.groups()[:3])
    for name, value in zip(("ln", "r", "p"), (ln, r, p), strict=True):
        low, high = _LIMITS[name]
        if not low <= value <= high:
            return None
    try:
        salt, key = _unb64(match.group(4)), _unb64(match.group(5))
    except binascii.Error:
        return None
    return ln, r, p, salt, key


def _derive(pin: str, salt: bytes, ln: int, r: int, p: int, length: int) -> bytes:
    n = 1 << ln
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    return hashlib.scrypt(
        pin.encode("ascii"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
