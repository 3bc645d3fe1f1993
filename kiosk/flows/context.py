"""What the flows share: trusted keys, the venue's services, and the per-thread context."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, assert_never
from zoneinfo import ZoneInfo

from kiosk.amounts import paid_for
from kiosk.clock import BootClock, Clocks, boot_time, due
from kiosk.config import Config
from kiosk.errors import JournalFull, TokenError
from kiosk.flows.health import Reachability
from kiosk.flows.offline import OfflinePolicy, SyncStamp, conflicts_24h, sync_age
from kiosk.journal import Journal, Request
from kiosk.journal.money import keep_one_row_of_money
from kiosk.tokens import KeySet, Scanned, Unrecognised, classify
from kiosk.venue import Service
from kiosk.views import Outcome
from kiosk.vocabulary import RequestKind

if TYPE_CHECKING:
    from kiosk.backend.client import BackendClient

log = logging.getLogger("kiosk.flows")

JWKS_META = "jwks"
VENUE_META = "venue"
LAST_SYNC_META = "last_sync"
UNKNOWN_KID_REFRESH_S = 60.0
SCAN_RESERVE_S = 0.25  # of a scan's budget: journaling and showing the outcome


class KeyStore:
    """The trusted JWKS, cached in the journal; thread-safe."""

    def __init__(self) -> None:
        self._keys = KeySet()
        self._fetched_at = 0.0
        self._last_try = 0.0
        self._lock = threading.Lock()
        self._fetching = threading.Lock()  # one fetch at a time; others wait and reuse it

    @property
    def keys(self) -> KeySet:
        with self._lock:
            return self._keys

    @property
    def fetched_at(self) -> float:
        with self._lock:
            return self._fetched_at

    def load(self, journal: Journal) -> None:
        """Take the cached set from the journal, if any (a damaged cache is ignored)."""
        text = journal.get_meta(JWKS_META)
        if not text:
            return
        try:
            cached = json.loads(text)
            keys = KeySet.from_jwks(cached["jwks"])
            fetched = float(cached["fetched_at"])
        except (ValueError, KeyError, TypeError, TokenError) as exc:
            log.warning("ignoring the cached key set: %s", exc)
            return
        with self._lock:
            self._keys, self._fetched_at = keys, fetched

    def refresh(
        self, client: BackendClient, journal: Journal, *, now: float, min_age: float = 0.0
    ) -> bool:
        """Fetch the JWKS and cache it, unless a fetch (or attempt) is younger than *min_age*.

        Returns False when the fetch failed (the old set is kept) or was skipped.
        """
        with self._fetching:
            with self._lock:
                if not due(max(self._fetched_at, self._last_try), now, min_age):
                    return False
                self._last_try = now
            try:
                document = client.fetch_jwks()
                keys = KeySet.from_jwks(document)
            except Exception as exc:
                log.warning("could not refresh the key set: %s", exc)
                return False
            journal.set_meta(JWKS_META, json.dumps({"jwks": document, "fetched_at": now}))
            with self._lock:
                self._keys, self._fetched_at = keys, now
        log.info("key set refreshed: %d keys", len(keys))
        return True


class VenueCache:
    """The venue's name and services, cached in the journal; thread-safe."""

    def __init__(self) -> None:
        self._name = ""
        self._services: tuple[Service, ...] = ()
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    @property
    def services(self) -> tuple[Service, ...]:
        with self._lock:
            return self._services

    @property
    def name(self) -> str:
        with self._lock:
            return self._name

    @property
    def fetched_at(self) -> float:
        with self._lock:
            return self._fetched_at

    def load(self, journal: Journal) -> None:
        text = journal.get_meta(VENUE_META)
        if not text:
            return
        try:
            data = json.loads(text)
            services = tuple(Service(**s) for s in data["services"])
            name, fetched = str(data["name"]), float(data["fetched_at"])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the cached venue: %s", exc)
            return
        with self._lock:
            self._name, self._services, self._fetched_at = name, services, fetched

    def refresh(self, client: BackendClient, journal: Journal, venue: str, *, now: float) -> bool:
        try:
            info = client.get_venue(venue)
        except Exception as exc:
            log.warning("could not refresh the venue's services: %s", exc)
            return False
        services = tuple(info.services)
        journal.set_meta(
            VENUE_META,
            json.dumps(
                {
                    "name": info.name,
                    "services": [s.__dict__ for s in services],
                    "fetched_at": now,
                }
            ),
        )
        with self._lock:
            self._name, self._services, self._fetched_at = info.name, services, now
        return True


@dataclass
class FlowContext:
    """Everything a flow needs, owned by one thread (journal and client are not shared)."""

    cfg: Config
    journal: Journal
    client: BackendClient
    keys: KeyStore
    venue: VenueCache
    health: Reachability
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    clock_synced: Callable[[], bool] = lambda: False
    wake_sync: Callable[[], None] = lambda: None
    boot: BootClock = boot_time
    policy: OfflinePolicy = field(init=False)
    tz: ZoneInfo = field(init=False)

    def __post_init__(self) -> None:
        self.policy = OfflinePolicy(self.cfg.offline)
        self.tz = ZoneInfo(self.cfg.device.timezone)

    def last_sync(self) -> float | None:
        stamp = SyncStamp.parse(self.journal.get_meta(LAST_SYNC_META))
        return None if stamp is None else stamp.wall

    def mark_synced(self) -> None:
        """Record a successful exchange with the backend (the offline age counts from here)."""
        self.journal.set_meta(LAST_SYNC_META, SyncStamp(self.clock(), self.boot()).encode())

    def clocks(self) -> Clocks:
        """This context's wall clock, boot-time clock and clock sync, read now."""
        return Clocks(self.clock(), self.boot(), self.clock_synced())

    def offline_refusal(self, amount_cents: int) -> str | None:
        """Why a receipt of *amount_cents* may not be accepted offline now, or None."""
        now = self.clocks()
        age = sync_age(
            SyncStamp.parse(self.journal.get_meta(LAST_SYNC_META)),
            now=now.wall,
            now_boot=now.boot,
            clock_synced=now.synced,
        )
        return self.policy.refusal(
            amount_cents,
            exposure=self.journal.offline_exposure(),
            sync_age=age,
            conflicts_24h=conflicts_24h(self.journal, now),
        )

    def scan_deadline(self) -> float:
        """Until when a receipt in hand may wait for the backend, retries and token included.

        ``backend.scan_budget`` from now, less what recording and showing the
        outcome takes, so that the customer sees a result within the budget.
        """
        budget = self.cfg.backend.scan_budget
        return self.monotonic() + max(budget - SCAN_RESERVE_S, budget / 2)

    def charge_deadline(self) -> float:
        """Until when a charge (or cancel) in hand may wait: one whole attempt, at least the
        scan budget. Money may move, so a slow answer is worth waiting for."""
        b = self.cfg.backend
        return self.monotonic() + max(b.scan_budget, b.connect_timeout + b.read_timeout)

    def send(
        self,
        request: Request,
        *,
        deadline: float | None = None,
        answered: Callable[[Any], None] | None = None,
        durable: bool = True,
    ) -> Any:
        """Deliver a journaled request (see :func:`kiosk.flows.delivery.deliver`).

        *deadline* defaults to the time a scan in hand may wait for the request's kind
        (:meth:`scan_deadline` for a receipt, :meth:`charge_deadline` otherwise); pass
        ``monotonic()`` for a single attempt with the client's own timeouts. *answered*
        writes more in the answer's commit; *durable* false lets that commit skip the
        flush (see :func:`kiosk.flows.delivery.deliver`).
        """
        from kiosk.flows.delivery import deliver

        return deliver(
            self.client,
            self.journal,
            request,
            health=self.health,
            deadline=self._deadline_for(request) if deadline is None else deadline,
            monotonic=self.monotonic,
            sleep=self.sleep,
            on_success=self.mark_synced,
            answered=answered,
            durable=durable,
            clock=self.clock,
            boot=self.boot,
        )

    def _deadline_for(self, request: Request) -> float:
        kind = request.kind
        match kind:
            case RequestKind.RECEIPT:
                return self.scan_deadline()
            case RequestKind.CHARGE | RequestKind.CANCEL:
                return self.charge_deadline()
            case _:
                assert_never(kind)

    def answer(self, request: Request, to_outcome: Callable[[Any], Outcome], **kw: Any) -> Outcome:
        """Send *request* and record the outcome of its answer in the answer's own commit
        (answer, outcome and last-sync time), which does not wait for the disk: the
        request was flushed before it left, and the engine has the answer flushed right
        after the result is shown. Raises what :meth:`send` raises."""
        shown: list[Outcome] = []

        def record(result: Any) -> None:
            outcome = to_outcome(result)
            shown.append(self.record(outcome, request.id, shown=outcome.accepted))

        self.send(request, answered=record, durable=False, **kw)
        return shown[0]

    def classify(self, text: str) -> Scanned:
        """What a scanned text is, against the trusted keys; an unknown ``kid`` triggers
        one key refresh (at most once a minute: a key may have rotated)."""

        def run() -> Scanned:
            return classify(
                text, self.keys.keys, self.cfg.backend.issuer, now=self.clock(),
                clock_trusted=self.clock_synced(),
            )  # fmt: skip

        scanned = run()
        if isinstance(scanned, Unrecognised) and scanned.reason == "unknown_kid":
            self.keys.refresh(
                self.client, self.journal, now=self.clock(), min_age=UNKNOWN_KID_REFRESH_S
            )
            scanned = run()
        return scanned

    def require_space(self) -> None:
        """Refuse new requests before the disk is full; stored entries are kept."""
        if self.journal.free_bytes() < self.cfg.journal.min_free_mb * 1024 * 1024:
            raise JournalFull("less free disk than journal.min_free_mb; new scans are refused")

    def record(
        self,
        outcome: Outcome,
        request_id: int | None = None,
        *,
        synced: bool = True,
        shown: bool = False,
    ) -> Outcome:
        """Journal one scan's outcome (before it is shown) and return it.

        A row for a request that earlier rows already answer keeps the transaction at one
        row of money, in the same commit (:func:`kiosk.journal.money.keep_one_row_of_money`).
        """
        service, amount_check, difference = paid_for(outcome)
        with self.journal.transaction():
            if request_id is not None:
                keep_one_row_of_money(self.journal.conn, request_id, outcome.kind, outcome.word)
            self.journal.record(
                outcome.kind,
                outcome.word,
                tx=outcome.tx,
                amount_cents=outcome.amount_cents,
                reason=outcome.reason,
                request_id=request_id,
                synced=synced,
                shown_accepted=shown,
                now=self.clock(),
                service=service,
                amount_check=amount_check,
                amount_difference_cents=difference,
            )
        return outcome


def open_context(
    cfg: Config,
    *,
    client_factory: Callable[[Config], BackendClient],
    keys: KeyStore | None = None,
    venue: VenueCache | None = None,
    health: Reachability | None = None,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    clock_synced: Callable[[], bool] = lambda: False,
    wake_sync: Callable[[], None] = lambda: None,
    recover: bool = True,
    boot: BootClock = boot_time,
) -> FlowContext:
    """The one way to build a FlowContext: a journal connection and a backend client
    for the calling thread, with the shared caches (new ones for a one-shot command).

    The cached key set and services are loaded from the journal into caches that
    are still empty. The caller closes ``journal`` and ``client``. Raises
    JournalError (the journal cannot be opened) or what *client_factory* raises.
    With *recover* false a damaged journal raises JournalCorrupt and stays where
    it is (only the service's engine moves it aside).
    """
    from kiosk.journal import Journal

    journal = Journal.open(cfg.journal.path, recover=recover)
    try:
        client = client_factory(cfg)
        ctx = FlowContext(
            cfg=cfg,
            journal=journal,
            client=client,
            keys=keys if keys is not None else KeyStore(),
            venue=venue if venue is not None else VenueCache(),
            health=health if health is not None else Reachability(),
            clock=clock,
            monotonic=monotonic,
            clock_synced=clock_synced,
            wake_sync=wake_sync,
            boot=boot,
        )
    except BaseException:
        journal.close()
        raise
    if len(ctx.keys.keys) == 0:
        ctx.keys.load(journal)
    if not ctx.venue.services:
        ctx.venue.load(journal)
    return ctx


def default_client(cfg: Config) -> BackendClient:
    """The backend client of ``cfg.backend``, with its own session."""
    from kiosk.backend.client import BackendClient

    return BackendClient.from_config(cfg)
