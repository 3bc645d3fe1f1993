"""What the counter shows: the outcome of a scan and every other screen state.

These frozen values are the only thing the presentation side (screens, display,
indicators) receives from the engine. ``Outcome.word`` is one of the outcome
words of the interface contract; ``history --local`` reads the same words back.
Times are timezone-aware datetimes in the studio's local zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from kiosk.day_report import DayFigures
from kiosk.venue import Service
from kiosk.vocabulary import RequestKind, Word, accepted

OUTCOME_WORDS: tuple[Word, ...] = tuple(Word)
"""Every outcome word, in the contract's order."""


@dataclass(frozen=True)
class Outcome:
    """The result of one scan or cancel, as shown and journaled.

    ``kind`` is ``receipt``, ``charge`` or ``cancel``. ``reason`` is a short word
    saying why a refusal happened (``not_smartum``, ``bad_signature``,
    ``unknown_kid``, ``expired``, ``not_same_day``, ``journal``, ``disk_full``,
    ``limit_amount``, ``limit_total``, ``limit_count``, ``stale_sync``, ...).
    """

    word: Word
    kind: RequestKind
    tx: str | None = None
    amount_cents: int | None = None
    venue_name: str = ""
    at: datetime | None = None  # payment time (receipt) or charge time
    checked_at: datetime | None = None  # for already_checked
    checked_by: str | None = None  # device id, for already_checked
    service_name: str = ""
    balance_cents: int | None = None
    reason: str = ""
    amount_match: AmountMatch | None = None  # a checked receipt against the price list
    told_at: datetime | None = None  # answered from the journal: when the backend said so

    def __post_init__(self) -> None:
        try:  # plain strings of the contract are accepted and typed here
            object.__setattr__(self, "word", Word(self.word))
        except ValueError:
            raise ValueError(f"unknown outcome word {self.word!r}") from None
        try:
            object.__setattr__(self, "kind", RequestKind(self.kind))
        except ValueError:
            raise ValueError(f"unknown outcome kind {self.kind!r}") from None

    @property
    def accepted(self) -> bool:
        """True for a payment accepted at the counter, or a cancel that went through."""
        return accepted(self.word, self.kind)


@dataclass(frozen=True)
class AmountMatch:
    """A receipt's amount against the venue's eligible services.

    Matched: ``services`` (one, or two whose prices add up; the same one twice for
    two visits) cost exactly the amount and ``difference_cents`` is 0. Otherwise
    ``services`` holds the nearest service and ``difference_cents`` is the amount
    minus its price (negative: paid less).
    """

    services: tuple[Service, ...]
    difference_cents: int = 0

    @property
    def matched(self) -> bool:
        return self.difference_cents == 0


@dataclass(frozen=True)
class Ready:
    """Waiting for a scan. Icons for offline mode and an unsynced clock."""

    now: datetime
    offline: bool = False
    clock_warning: bool = False
    pending: int = 0
    idle_seconds: float = 0.0  # time since the last scan: drives dimming and pixel shift


@dataclass(frozen=True)
class Checking:
    """A scan is being verified or sent; ``kind`` is receipt, charge or cancel."""

    kind: RequestKind = RequestKind.RECEIPT


@dataclass(frozen=True)
class Result:
    """The outcome of a scan, shown until the result time runs out."""

    outcome: Outcome


@dataclass(frozen=True)
class ServiceMenu:
    """Pick the service to charge a payment code for; ``selected`` indexes ``services``."""

    services: tuple[Service, ...]
    selected: int = 0


@dataclass(frozen=True)
class ConfirmCharge:
    """Confirm charging ``service`` (OK = charge, long press = back)."""

    service: Service


@dataclass(frozen=True)
class CancelConfirm:
    """Confirm cancelling the last transaction of the day."""

    tx: str
    amount_cents: int
    at: datetime | None = None


@dataclass(frozen=True)
class StillCharging:
    """A charge is sent and the backend is slow: wait for its answer, do not scan again."""

    amount_cents: int | None = None


@dataclass(frozen=True)
class PinPrompt:
    """Enter the staff PIN: ``entered`` digits confirmed (shown masked), ``digit`` being edited."""

    entered: int
    digit: int = 0
    min_digits: int = 4


@dataclass(frozen=True)
class PinWrong:
    """The PIN was wrong; ``tries_left`` before cancelling locks."""

    tries_left: int


@dataclass(frozen=True)
class PinLocked:
    """Too many wrong PINs: cancelling is locked for ``seconds_left`` more."""

    seconds_left: int


@dataclass(frozen=True)
class CancelUnavailable:
    """Cancelling on the device is not possible; ``reason`` is ``off`` or ``no_pin``."""

    reason: str


@dataclass(frozen=True)
class Salvage:
    """A damaged journal salvaged into a fresh one at start: rows carried over and rows
    lost; ``more_lost``: some tables could not be counted, more may be lost."""

    kept: int
    lost: int
    more_lost: bool = False


@dataclass(frozen=True)
class Alarm:
    """A fault that stops normal work; ``kind`` is ``journal``, ``disk_full`` or ``scanner``.

    ``detail`` is a technical line (a file, a device) shown as it is; ``salvage`` is
    shown in the screen's language instead when the journal was salvaged."""

    kind: str
    detail: str = ""
    salvage: Salvage | None = None


@dataclass(frozen=True)
class TechInfo:
    """Technician screen: who and where this kiosk is."""

    device_id: str
    ip_address: str
    version: str
    pending: int
    online: bool
    venue: str = ""
    quarantined: int = 0  # uploads retried only rarely after failing many times
    conflicts_24h: int = 0
    offline_off: bool = False  # offline acceptance refused: too many conflicts in 24 h
    # A damaged journal salvaged lately: rows carried over and rows lost (-1: none lately).
    journal_salvaged: int = -1
    journal_lost: int = 0


@dataclass(frozen=True)
class DayReport:
    """The staff's day report on the device: today's figures, one page of them.

    Page 0 the money (receipts, charges, cancels, total), page 1 what to look into
    (offline acceptances, not yet uploaded, conflicts, late answers), then the
    services, :data:`SERVICES_PER_PAGE` a page (the unmatched receipts last).
    """

    day: datetime
    figures: DayFigures
    page: int = 0

    @property
    def pages(self) -> int:
        entries = len(self.figures.services) + 1
        return 2 + -(-entries // SERVICES_PER_PAGE)


SERVICES_PER_PAGE = 2


@dataclass(frozen=True)
class OutOfService:
    """Shown when the service stops."""

    message: str = field(default="")


View = (
    Ready
    | Checking
    | Result
    | ServiceMenu
    | ConfirmCharge
    | CancelConfirm
    | StillCharging
    | PinPrompt
    | PinWrong
    | PinLocked
    | CancelUnavailable
    | Alarm
    | TechInfo
    | DayReport
    | OutOfService
)
