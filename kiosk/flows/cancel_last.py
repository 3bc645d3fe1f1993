"""Cancel-last at the counter: what the screen shows from the long press on OK to the question.

The engine asks :class:`~kiosk.flows.cancel_gate.CancelGate` whether the cancel
may go on (``[counter] cancel``, the staff PIN); :func:`after_gate` turns the
gate's answer into the next screen, and :func:`offer` finds the day's last
accepted transaction to ask about. The cancel itself is sent by the engine once
the staff confirms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import assert_never

from kiosk.flows import cancel_gate, modes, payment
from kiosk.flows.context import FlowContext
from kiosk.views import CancelConfirm, Outcome, View
from kiosk.vocabulary import RequestKind, Word


@dataclass(frozen=True)
class Ask:
    """Enter *mode* and show *view*; give *signal* too when the staff must notice."""

    mode: modes.Mode
    view: View
    signal: str | None = None


@dataclass(frozen=True)
class BackToReady:
    """The staff left: the ready screen."""


Step = Ask | Outcome | BackToReady


def after_gate(
    ctx: FlowContext, decision: cancel_gate.Decision, *, menu_until: float, result_until: float
) -> Step:
    """The next screen for the gate's *decision*; *menu_until* ends a question unanswered,
    *result_until* a refusal on the screen."""
    match decision:
        case cancel_gate.Allowed():
            return offer(ctx, until=menu_until)
        case cancel_gate.Asking(entry, wrong):
            return Ask(modes.PinAsk(menu_until, entry), entry.view(), "refused" if wrong else None)
        case cancel_gate.Refused(view):
            return Ask(modes.Showing(result_until), view, "refused")
        case cancel_gate.Left():
            return BackToReady()
        case _:
            assert_never(decision)


def offer(ctx: FlowContext, *, until: float) -> Ask | Outcome:
    """Ask whether to cancel today's last accepted transaction, if there is one."""
    last = ctx.journal.last_accepted(since=payment.start_of_day(ctx))
    if last is None or last.tx is None:
        return Outcome(Word.INVALID, RequestKind.CANCEL, reason="nothing_to_cancel")
    at = datetime.fromtimestamp(last.at, ctx.tz)
    amount = last.amount_cents or 0
    return Ask(modes.CancelAsk(until, last.tx, amount), CancelConfirm(last.tx, amount, at))
