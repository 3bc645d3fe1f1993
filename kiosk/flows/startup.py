"""What the engine does once its journal and client are open, before it serves anyone.

Scans sent but not recorded by an earlier run (a crash or power cut) are recovered
first (:mod:`kiosk.flows.recovery`); then the signing keys and the venue are loaded
from the journal, and the backend is asked for keys when the journal holds none.
"""

from __future__ import annotations

import logging

from kiosk.errors import JournalError
from kiosk.flows.context import FlowContext
from kiosk.flows.recovery import resume as recover_unrecorded
from kiosk.views import Alarm, Salvage

log = logging.getLogger("kiosk.engine")


def start_up(ctx: FlowContext) -> tuple[int, Alarm | None]:
    """Recover, load, count: (requests pending, an alarm for the screen or None).

    A full disk or a damaged journal at start must not end the engine: it is an alarm.
    A journal salvaged at open (rows may be lost) is an alarm too, so that the staff
    calls the technician (``kiosk status`` says more).
    """
    try:
        recover_unrecorded(ctx)
    except JournalError as exc:
        log.error("journal: cannot recover the requests of the last run: %s", exc)
    try:
        ctx.journal.defer_checkpoints()  # the sync worker copies the log, not a scan
    except JournalError as exc:
        log.warning("journal: %s", exc)
    try:
        ctx.keys.load(ctx.journal)
        ctx.venue.load(ctx.journal)
        if len(ctx.keys.keys) == 0:
            ctx.keys.refresh(ctx.client, ctx.journal, now=ctx.clock())
        pending = ctx.journal.pending_count()
    except JournalError as exc:
        log.error("journal: %s", exc)
        return 0, Alarm("journal", str(exc))
    recovery = ctx.journal.recovery
    if recovery is not None and recovery.how == "salvaged":
        salvage = Salvage(recovery.rows_salvaged, recovery.rows_lost, bool(recovery.unknown))
        return pending, Alarm("journal", salvage=salvage)
    return pending, None
