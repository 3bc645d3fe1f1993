"""What the engine does with events that queued up while it was busy.

A genuine code is never dropped in favour of junk. When the inbox is full, the
first event to go is an unreadable read (a scanner fault or text that is no
SmartumPay code), then the oldest scan; presses and device faults (unplugged,
replugged) go last. When the engine takes the queued events, verified tokens
are handled first and unreadable input is dropped; without a verified token
only the newest scan is answered. The caller logs every drop (:func:`describe`)
and gives the scanner's error beep, so the staff scans again.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kiosk.events import Event, Press, Scan, ScanFault
from kiosk.token_shape import looks_like_token
from kiosk.tokens import Receipt, Scanned, Verified

DEVICE_FAULTS = ("unplugged", "replugged")


def is_scan(event: Event) -> bool:
    """A read of a code (readable or not), as opposed to a press or a device fault."""
    return isinstance(event, Scan) or (
        isinstance(event, ScanFault) and event.reason not in DEVICE_FAULTS
    )


def is_junk(event: Event) -> bool:
    """A read that cannot be a SmartumPay code: a scanner fault or text of another shape."""
    if isinstance(event, ScanFault):
        return event.reason not in DEVICE_FAULTS
    if isinstance(event, Scan):
        return not looks_like_token(event.text)
    return False


def victim(events: Sequence[Event]) -> int:
    """Index of the event to drop from a full inbox (oldest first within each rank)."""
    for rank in (is_junk, is_scan):
        for i, event in enumerate(events):
            if rank(event):
                return i
    return 0


def make_room(inbox: queue.Queue[Event], arriving: Event) -> Event | None:
    """Free one place in a full *inbox* for *arriving*: the dropped event (maybe *arriving*
    itself), or None if the consumer took one meanwhile. Producers hold one lock."""
    waiting: list[Event] = []
    while True:
        try:
            waiting.append(inbox.get_nowait())
        except queue.Empty:
            break
    dropped = None
    if len(waiting) >= inbox.maxsize:
        candidates = [*waiting, arriving]
        dropped = candidates[victim(candidates)]
        if dropped is not arriving:
            waiting.remove(dropped)
    for kept in waiting:
        inbox.put_nowait(kept)
    return dropped


def describe(event: Event) -> str:
    """What an event was, for the log: never the scanned text itself (tokens are secrets)."""
    if isinstance(event, Scan):
        shape = "code-shaped" if looks_like_token(event.text) else "unreadable"
        return f"{shape} scan from {event.source} ({len(event.text)} characters)"
    if isinstance(event, ScanFault):
        return f"unreadable read from {event.source} ({event.reason})"
    assert isinstance(event, Press)
    return f"{'long ' if event.long else ''}press of {event.button}"


@dataclass
class Batch:
    """Events to handle, in order, with the classification of each kept scan; and drops."""

    handle: list[Event] = field(default_factory=list)
    scanned: dict[int, Scanned] = field(default_factory=dict)  # id(scan) -> what it is
    dropped: list[Event] = field(default_factory=list)
    repeats: int = 0


def select(events: Sequence[Event], classified: dict[int, Scanned]) -> Batch:
    """The queued events the engine handles now.

    *classified* holds what each queued :class:`Scan` is (by ``id``). Presses and
    device faults are kept in order. Verified tokens follow, each text once and
    payment codes last (a payment code may open a menu). Without a verified token,
    only the newest scan is answered, a code-shaped one before unreadable input.
    """
    batch = Batch()
    scans: list[Event] = []
    for event in events:
        (scans if is_scan(event) else batch.handle).append(event)
    verified = [s for s in scans if isinstance(classified.get(id(s)), Verified)]
    chosen: list[Event] = []
    seen: set[str] = set()
    if verified:
        for scan in verified:
            assert isinstance(scan, Scan)
            if scan.text in seen:
                batch.repeats += 1
                continue
            seen.add(scan.text)
            chosen.append(scan)
        chosen.sort(key=lambda s: not isinstance(classified[id(s)], Receipt))
    else:
        readable = [s for s in scans if not is_junk(s)]
        chosen = (readable or scans)[-1:]
    kept = {id(s) for s in chosen}
    for scan in scans:
        if id(scan) in kept:
            if id(scan) in classified:
                batch.scanned[id(scan)] = classified[id(scan)]
        elif not (verified and isinstance(scan, Scan) and scan.text in seen):
            batch.dropped.append(scan)
    batch.handle.extend(chosen)
    return batch


def take(inbox: queue.Queue[Event], first: Event, classify: Callable[[str], Scanned]) -> Batch:
    """*first* and the events queued behind it, chosen by :func:`select`.

    Scans are classified only when more than one queued up, to choose between
    them; a lone scan is verified by the engine after its first feedback.
    """
    events = [first]
    while True:
        try:
            events.append(inbox.get_nowait())
        except queue.Empty:
            break
    classified: dict[int, Scanned] = {}
    if sum(1 for e in events if is_scan(e)) > 1:
        for event in events:
            if isinstance(event, Scan):
                classified[id(event)] = classify(event.text)
    return select(events, classified)
