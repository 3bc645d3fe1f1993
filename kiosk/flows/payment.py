"""Payment codes and cancels: charges always need the network and are sent exactly once.

Engine thread (and ``kiosk cancel``). A charge whose outcome is unknown may
already have moved money: it stays pending in the journal and is re-sent with
its key until the backend answers; it is never turned into a refusal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time
from typing import TYPE_CHECKING

from kiosk.backend import bodies
from kiosk.errors import BackendAuthError, BackendError, BackendUnreachable, KioskError
from kiosk.flows.context import FlowContext
from kiosk.flows.outcomes import from_cancel, from_charge
from kiosk.journal import Request
from kiosk.tokens import BareCode, Paycode
from kiosk.venue import Service
from kiosk.views import Outcome
from kiosk.vocabulary import PAYMENT_KINDS, RequestKind, Word

if TYPE_CHECKING:
    from kiosk.backend.client import CancelResult

log = logging.getLogger("kiosk.payment")


def paycode_ref(code: Paycode | BareCode) -> str:
    """The journal's handle for a payment code: its id, or its 12 digits."""
    return code.jti if isinstance(code, Paycode) else code.code


def open_charge(ctx: FlowContext, code: Paycode | BareCode) -> Request | None:
    """A charge for this code that is still waiting for its answer, if any."""
    return ctx.journal.open_request_for(RequestKind.CHARGE, ref=paycode_ref(code))


@dataclass(frozen=True)
class Resend:
    """A charge of this code is still pending: resend it (same key), never a new one."""

    request: Request
    service_name: str


@dataclass(frozen=True)
class Choose:
    """Let the studio pick one of the venue's services."""

    services: tuple[Service, ...]


@dataclass(frozen=True)
class ChargeWith:
    """Charge the configured default service (a kiosk without buttons)."""

    service: Service


Start = Outcome | Resend | Choose | ChargeWith
"""What to do with a scanned payment code; an Outcome is final (already journaled)."""


def start(ctx: FlowContext, code: Paycode | BareCode, *, has_buttons: bool) -> Start:
    """Decide how a scanned payment code proceeds. Raises JournalError only.

    Charges always need the network: after an outage, a cheap probe (the JWKS)
    asks it now rather than showing a menu that cannot be charged.
    """
    pending = open_charge(ctx, code)
    if pending is not None:
        service_id = str(pending.body.get("service"))
        service = service_named(ctx, service_id)
        return Resend(pending, service.name if service else service_id)
    if ctx.health.offline and not reachable(ctx):
        return ctx.record(Outcome(Word.NEEDS_NETWORK, RequestKind.CHARGE, reason="offline"))
    if not ctx.venue.services:
        ctx.venue.refresh(ctx.client, ctx.journal, ctx.cfg.device.venue, now=ctx.clock())
    services = ctx.venue.services
    if not services:
        return ctx.record(Outcome(Word.NEEDS_NETWORK, RequestKind.CHARGE, reason="no_services"))
    if has_buttons:
        return Choose(services)
    default = service_named(ctx, ctx.cfg.device.default_service)
    if default is None:
        return ctx.record(Outcome(Word.INVALID, RequestKind.CHARGE, reason="no_default_service"))
    return ChargeWith(default)


def reachable(ctx: FlowContext) -> bool:
    """After an outage, a cheap probe: charges need the network, so ask it now."""
    try:
        ctx.client.fetch_jwks(within=ctx.cfg.backend.scan_budget)
    except KioskError:
        return False
    ctx.health.success()
    return True


def charge(ctx: FlowContext, code: Paycode | BareCode, service: Service) -> Outcome:
    """Charge *service* with the payment code. Raises JournalError only."""
    if not service.eligible:
        return ctx.record(
            Outcome(
                Word.NOT_ELIGIBLE,
                RequestKind.CHARGE,
                amount_cents=service.price_cents,
                service_name=service.name,
                reason="local",
            )
        )
    ctx.require_space()
    body = bodies.charge(
        code.token if isinstance(code, Paycode) else code.code,
        venue=ctx.cfg.device.venue,
        device=ctx.cfg.device.id,
        service=service.id,
        amount_cents=service.price_cents,
    )
    request = ctx.journal.begin(
        RequestKind.CHARGE,
        body,
        ref=paycode_ref(code),
        amount_cents=service.price_cents,
        sending=True,  # marked as attempted in the same commit
        now=ctx.clock(),
    )
    return send_charge(ctx, request, service.name)


def send_charge(ctx: FlowContext, request: Request, service_name: str) -> Outcome:
    """Send (or re-send) a journaled charge and turn the answer into an outcome."""
    try:
        # The answer and its outcome are written in one commit (flushed once shown).
        return ctx.answer(
            request,
            lambda result: from_charge(
                result, ctx.tz, service_name=service_name, amount_cents=request.amount_cents or 0
            ),
        )
    except (BackendUnreachable, BackendAuthError) as exc:
        current = ctx.journal.request(request.id)
        if not current.maybe_delivered:
            ctx.journal.void(request.id, Word.NEEDS_NETWORK)
            log.info("charge not sent: %s", exc)
            return ctx.record(
                Outcome(
                    Word.NEEDS_NETWORK,
                    RequestKind.CHARGE,
                    amount_cents=request.amount_cents,
                    service_name=service_name,
                    reason="offline",
                )
            )
        return _unknown(ctx, request, service_name)
    except BackendError as exc:
        log.warning("charge request %d: outcome unknown (%s); will retry", request.id, exc)
        return _unknown(ctx, request, service_name)


def _unknown(ctx: FlowContext, request: Request, service_name: str) -> Outcome:
    ctx.wake_sync()
    return ctx.record(
        Outcome(
            Word.NEEDS_NETWORK,
            RequestKind.CHARGE,
            amount_cents=request.amount_cents,
            service_name=service_name,
            reason="charge_pending",
        ),
        request.id,
        synced=False,
    )


def service_named(ctx: FlowContext, service_id: str) -> Service | None:
    for service in ctx.venue.services:
        if service.id == service_id:
            return service
    return None


def start_of_day(ctx: FlowContext) -> float:
    """Unix time of local midnight today (cancels are same-day only)."""
    today = datetime.fromtimestamp(ctx.clock(), ctx.tz).date()
    return datetime.combine(today, time(0), ctx.tz).timestamp()


def cancel(ctx: FlowContext, tx: str, reason: str) -> Outcome:
    """Cancel a same-day transaction at the backend. Raises JournalError only.

    A receipt accepted offline is uploaded first, since the backend cannot
    cancel what it has not seen.
    """
    amount = None
    for kind in PAYMENT_KINDS:
        earlier = ctx.journal.last_request_for(kind, tx)
        if earlier is not None:
            amount = earlier.amount_cents
            if earlier.open:
                try:
                    ctx.send(earlier)
                except BackendError:
                    return ctx.record(
                        Outcome(
                            Word.NEEDS_NETWORK,
                            RequestKind.CANCEL,
                            tx,
                            amount,
                            reason="upload_first",
                        )
                    )
    open_cancel = ctx.journal.open_request_for(RequestKind.CANCEL, tx=tx)
    request = open_cancel or ctx.journal.begin(
        RequestKind.CANCEL, bodies.cancel(reason), tx=tx, amount_cents=amount, now=ctx.clock()
    )
    try:
        result_c: CancelResult = ctx.send(request)
    except BackendError as exc:
        current = ctx.journal.request(request.id)
        if not current.maybe_delivered:
            ctx.journal.void(request.id, Word.NEEDS_NETWORK)
            return ctx.record(
                Outcome(Word.NEEDS_NETWORK, RequestKind.CANCEL, tx, amount, reason="offline")
            )
        log.warning("cancel of %s: outcome unknown (%s); will retry", tx, exc)
        ctx.wake_sync()
        return ctx.record(
            Outcome(Word.NEEDS_NETWORK, RequestKind.CANCEL, tx, amount, reason="cancel_pending"),
            request.id,
            synced=False,
        )
    return ctx.record(from_cancel(result_c, tx, amount), request.id)
