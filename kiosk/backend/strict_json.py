"""JSON parsing for untrusted input: duplicate keys and NaN/Infinity are refused.

Used for token segments and backend answers alike, so that both sides of the
kiosk read one JSON text the same way (no "last duplicate wins" surprises).
"""

from __future__ import annotations

import json
from typing import Any


def loads(text: str | bytes) -> Any:
    """Parse *text*. Raises ValueError (or RecursionError for absurd nesting)."""
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key[:40]!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
