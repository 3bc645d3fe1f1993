"""Every error the kiosk raises on purpose.

::

    KioskError
    ├── ConfigError            configuration rejected; .problems lists all of it
    ├── TokenError             a scanned text is not a valid SmartumPay token
    ├── HardwareError          a device is missing, busy or not permitted
    │   ├── DeviceNotFound
    │   └── DevicePermission
    ├── DecoderError           the QR decoder cannot run (library missing)
    ├── BackendError           no documented answer came back from the backend
    │   ├── BackendUnreachable nothing was delivered; safe to go offline
    │   ├── OutcomeUnknown     may have been delivered; retry with the same key
    │   ├── BackendAuthError   the backend refused the kiosk's credentials
    │   └── BackendProtocolError  an answer outside the contract
    ├── ClientClosed           the backend client was used after close (a bug, not an outage)
    └── JournalError           the SQLite journal cannot be read or written
        ├── JournalCorrupt
        └── JournalFull

Messages say what is wrong and what to do next; they never contain secrets or
whole tokens.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiosk.vocabulary import TokenKind


class KioskError(Exception):
    """Root of every error the kiosk raises on purpose."""


class ConfigError(KioskError, ValueError):
    """Configuration rejected; .problems lists every problem, one line each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))


class TokenError(KioskError, ValueError):
    """A scanned text is not a valid SmartumPay token; .reason is a short word."""

    def __init__(self, reason: str, detail: str = "", *, kind: TokenKind | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.kind = kind  # the token's kind, when it was known before the check failed
        super().__init__(f"{reason}: {detail}" if detail else reason)


class HardwareError(KioskError):
    """A device is missing, busy or not permitted."""


class DeviceNotFound(HardwareError):
    """The device node does not exist (unplugged, wrong path, not enabled)."""


class DevicePermission(HardwareError, PermissionError):
    """The device exists but this user may not open it (check groups)."""


class DecoderError(KioskError):
    """The QR decoder cannot run, for example its native library is missing."""


class BackendError(KioskError):
    """No documented answer came back from the backend."""


class BackendUnreachable(BackendError):
    """Nothing was delivered; safe to go offline."""


class OutcomeUnknown(BackendError):
    """The request may have been delivered; retry it with the same key and body."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class BackendBusy(BackendError):
    """The backend refused to process the request now (429): nothing was processed.

    Retry the same request after ``retry_after`` seconds when given.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class BackendAuthError(BackendError):
    """The backend refused the kiosk's client id or secret."""


class BackendProtocolError(BackendError):
    """The backend answered something outside the contract."""


class ClientClosed(KioskError, RuntimeError):
    """The backend client was used after :meth:`close`; nothing was sent."""


class JournalError(KioskError):
    """The SQLite journal cannot be read or written."""


class JournalCorrupt(JournalError):
    """The journal file is damaged; the service mends it (rebuilt in place, or salvaged)."""


class JournalFull(JournalError):
    """The disk holding the journal is full; stored entries are kept."""
