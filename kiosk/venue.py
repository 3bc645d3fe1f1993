"""What a venue sells: its services as the backend lists them (a leaf: imports nothing)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Service"]


@dataclass(frozen=True)
class Service:
    """A service of the venue as the backend lists it."""

    id: str
    name: str
    price_cents: int
    benefit: str = "massage"
    eligible: bool = True
