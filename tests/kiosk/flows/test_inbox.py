"""The inbox policy for busy moments: genuine codes are never dropped in favour of junk."""

from __future__ import annotations

import queue

from kiosk.events import Event, Press, Scan, ScanFault
from kiosk.flows import inbox
from kiosk.tokens import BareCode, Receipt, Scanned, Unrecognised

JWS = "eyJhbGciOiJFZERTQSJ9.eyJqdGkiOiJ0eCJ9.c2ln"
CODE = "123456789012"


def receipt(tx: str) -> Receipt:
    return Receipt(tx, "ven_demo", "Studio", "Street 1", 6500, "EUR", "massage", 0, "iss", JWS)


def test_a_full_inbox_drops_junk_before_any_code_and_codes_before_presses() -> None:
    events: list[Event] = [
        Press("ok", 0.0),
        Scan(JWS, "serial", 1.0),
        ScanFault("serial", "unplugged", 2.0),
        Scan("%%noise%%", "serial", 3.0),
        ScanFault("serial", "binary", 4.0),
    ]
    assert inbox.victim(events) == 3  # the oldest junk: text that is no code
    assert inbox.victim(events[:3]) == 1  # no junk: the oldest scan, never a press or unplug
    assert inbox.victim(events[:1]) == 0


def test_make_room_drops_arriving_junk_rather_than_a_waiting_code() -> None:
    q: queue.Queue[Event] = queue.Queue(maxsize=2)
    q.put_nowait(Scan(JWS, "serial", 0.0))
    q.put_nowait(Scan(CODE, "serial", 1.0))
    junk = ScanFault("serial", "not_utf8", 2.0)
    assert inbox.make_room(q, junk) is junk
    waiting = [q.get_nowait() for _ in range(2)]
    assert waiting == [Scan(JWS, "serial", 0.0), Scan(CODE, "serial", 1.0)]


def test_make_room_drops_waiting_junk_for_an_arriving_code() -> None:
    q: queue.Queue[Event] = queue.Queue(maxsize=2)
    q.put_nowait(Scan("noise", "serial", 0.0))
    q.put_nowait(Scan(JWS, "serial", 1.0))
    assert inbox.make_room(q, Scan(CODE, "serial", 2.0)) == Scan("noise", "serial", 0.0)
    assert q.qsize() == 1


def test_verified_scans_go_first_and_junk_is_dropped() -> None:
    junk1 = ScanFault("serial", "binary", 0.0)
    code = Scan(CODE, "serial", 1.0)
    genuine = Scan(JWS, "serial", 2.0)
    junk2 = Scan("noise", "serial", 3.0)
    again = Scan(JWS, "camera", 4.0)
    press = Press("up", 5.0)
    classified: dict[int, Scanned] = {
        id(code): BareCode(CODE),
        id(genuine): receipt("tx_1"),
        id(junk2): Unrecognised("not_smartum"),
        id(again): receipt("tx_1"),
    }
    batch = inbox.select([junk1, code, genuine, junk2, again, press], classified)
    assert batch.handle == [press, genuine, code]  # a receipt before a payment code's menu
    assert batch.dropped == [junk1, junk2]
    assert batch.repeats == 1
    assert batch.scanned[id(genuine)] == receipt("tx_1")


def test_without_a_verified_scan_the_newest_readable_one_is_answered() -> None:
    expired = Scan(JWS, "serial", 0.0)
    junk = ScanFault("serial", "partial", 1.0)
    unplugged = ScanFault("serial", "unplugged", 2.0)
    classified: dict[int, Scanned] = {id(expired): Unrecognised("expired")}
    batch = inbox.select([expired, junk, unplugged], classified)
    assert batch.handle == [unplugged, expired]
    assert batch.dropped == [junk]
    only_junk = inbox.select([junk, Scan("x", "serial", 3.0)], {id(junk): Unrecognised("x")})
    assert [type(e) for e in only_junk.handle] == [Scan]  # the newest: nothing readable


def test_log_lines_never_carry_the_scanned_text() -> None:
    text = inbox.describe(Scan(JWS, "serial", 0.0))
    assert JWS not in text and "code-shaped" in text and "serial" in text
    assert "not_utf8" in inbox.describe(ScanFault("hid", "not_utf8", 0.0))
