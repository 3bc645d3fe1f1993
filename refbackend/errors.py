"""The reference backend's own errors: it shares no code with the firmware it serves."""

from __future__ import annotations

__all__ = ["BackendError", "TokenRefused"]


class BackendError(Exception):
    """The backend cannot start or go on: database, signing key, TLS files or port unusable.

    The message says what is wrong and what to do next.
    """


class TokenRefused(ValueError):
    """A receipt or paycode the backend does not accept; ``.reason`` is the contract's word."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
