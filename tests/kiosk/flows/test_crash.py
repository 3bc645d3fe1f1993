"""Kill -9 the real ``kiosk run`` at random moments; every accepted receipt is checked once.

The kiosk runs as a subprocess reading a real pseudo-terminal as its serial
scanner, against the reference backend in this process. The test writes
receipt tokens to the pty, makes the backend drop answers after committing,
go away and come back, and kills the kiosk while a scan is being checked,
between scans and right after a dropped answer; it restarts it and goes on.
At the end ``kiosk sync`` runs until nothing is pending, and the backend's
database and the kiosk's journal must agree:

- every receipt the kiosk accepted (``checked`` / ``checked_offline``) is
  checked at the backend, by this kiosk, exactly once (one 200 answer);
- no request of this kiosk was ever answered ``already_checked``;
- the first recorded outcome of every receipt is not ``already_checked``;
- every check the backend holds from this kiosk has its request in the journal.

``KIOSK_CRASH_SEED`` picks another random schedule.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import tty
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from kiosk.journal import Journal
from refbackend import DEMO_VENUE, ReferenceBackend

SEED = int(os.environ.get("KIOSK_CRASH_SEED", "20251126"))
ROUNDS = 7
ACCEPTED = ("checked", "checked_offline")
START_S = 15.0
OUTCOME_S = 10.0
REPEAT_WINDOW_S = 0.2


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll *predicate* until it returns something truthy; fail the test naming *what*."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what} (seed {SEED})")
        time.sleep(0.01)


class Scanner:
    """A pty standing in for the USB scanner; the kiosk opens the slave through a symlink."""

    def __init__(self, link: Path) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # the test keeps the slave open: no hangup when the kiosk dies
        self.link = link
        link.symlink_to(os.ttyname(self.slave))

    def write(self, text: str) -> None:
        os.write(self.master, text.encode() + b"\r\n")

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


class KioskProcess:
    """``python -m kiosk run`` with NOTIFY_SOCKET pointing at a datagram socket of the test."""

    def __init__(self, config: Path, workdir: Path, journal: Journal, scanner: Scanner) -> None:
        self.config = config
        self.log = workdir / "kiosk.log"
        # Abstract namespace: no path length limit, nothing left on disk.
        self.notify_name = f"kiosk-crash-test-{os.getpid()}-{id(self)}"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind("\0" + self.notify_name)
        self.journal = journal
        self.scanner = scanner
        self.proc: subprocess.Popen[bytes] | None = None
        self.probes = 0
        self.starts = 0

    def start(self) -> None:
        """Start the kiosk; return once it said READY=1 and reads the scanner."""
        assert self.proc is None
        self.notify.setblocking(False)
        try:
            while self.notify.recv(4096):  # forget the previous run's messages
                pass
        except BlockingIOError:
            pass
        env = dict(os.environ, NOTIFY_SOCKET="@" + self.notify_name, PYTHONUNBUFFERED="1")
        env.pop("WATCHDOG_USEC", None)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kiosk", "run", "--config", str(self.config)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self.starts += 1
        self._wait_ready()
        self._wait_scanner()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_S
        self.notify.setblocking(True)
        while True:
            left = deadline - time.monotonic()
            assert self.proc is not None
            if left <= 0 or self.proc.poll() is not None:
                pytest.fail(f"kiosk run did not become ready (seed {SEED}):\n{self.tail()}")
            self.notify.settimeout(min(left, 0.5))
            try:
                message = self.notify.recv(4096).decode()
            except TimeoutError:
                continue
            if "READY=1" in message.splitlines():
                return

    def _wait_scanner(self) -> None:
        """READY=1 comes before the serial port is open: probe with a non-SmartumPay code."""

        def probes_seen() -> int:
            rows = self.journal.outcomes()
            return sum(1 for r in rows if r.tx is None and r.reason == "not_smartum")

        before = probes_seen()
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            self.probes += 1
            self.scanner.write(f"probe-{self.probes}")
            until = time.monotonic() + 0.3
            while time.monotonic() < until:
                if probes_seen() > before:
                    return
                time.sleep(0.01)
        pytest.fail(f"the kiosk never read the scanner (seed {SEED}):\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as a power cut leaves it."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=20)
        self.proc = None
        return code

    def close(self) -> None:
        if self.proc is not None:
            self.kill()
        self.notify.close()

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class BackendDb:
    """Read-only view of the reference backend's database: what it really did."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0)
        try:
            conn.row_factory = sqlite3.Row
            return list(conn.execute(sql, args))
        finally:
            conn.close()

    def state(self, tx: str) -> str | None:
        rows = self._rows("SELECT state FROM transactions WHERE tx = ?", (tx,))
        return str(rows[0]["state"]) if rows else None

    def is_checked(self, tx: str) -> bool:
        return self.state(tx) == "checked"

    def checks_by(self, device: str) -> dict[str, sqlite3.Row]:
        rows = self._rows(
            "SELECT * FROM transactions WHERE kind = 'receipt' AND state = 'checked'"
            " AND device = ?",
            (device,),
        )
        return {str(r["tx"]): r for r in rows}

    def answers(self, client: str) -> list[tuple[str, int | None, dict[str, Any]]]:
        """(idempotency key, HTTP status, answer) of every POST of *client*."""
        rows = self._rows("SELECT key, code, body FROM idempotency WHERE client = ?", (client,))
        return [
            (str(r["key"]), r["code"], json.loads(bytes(r["body"])) if r["body"] else {})
            for r in rows
        ]


def write_config(tmp_path: Path, backend: ReferenceBackend, client: tuple[str, str]) -> Path:
    secret = tmp_path / "client_secret"
    secret.write_text(client[1])
    secret.chmod(0o600)
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f"""
[device]
id = "counter-1"
venue = "{DEMO_VENUE}"

[backend]
url = "{backend.url}"
client_id = "{client[0]}"
client_secret_file = "{secret}"
issuer = "{backend.issuer}"
connect_timeout = 0.5
read_timeout = 1.0

[scanner]
source = "serial"
port = "{tmp_path / "scanner"}"
line_timeout = 0.2
repeat_window_scanner = {REPEAT_WINDOW_S}

[display]
driver = "none"

[signals]
led_pin = -1
buzzer_pin = -1
button_up = -1
button_down = -1
button_ok = -1

[journal]
path = "{tmp_path / "journal.db"}"
min_free_mb = 0

[offline]
max_amount_cents = 8000
max_total_cents = 1000000
max_count = 1000

[metrics]
textfile = ""

[log]
level = "info"
"""
    )
    return config


class Customer:
    """The customer side: scans receipts and remembers what the screen said."""

    def __init__(
        self, backend: ReferenceBackend, scanner: Scanner, journal: Journal, rng: random.Random
    ) -> None:
        self.backend = backend
        self.scanner = scanner
        self.journal = journal
        self.rng = rng
        self.tokens: dict[str, str] = {}  # tx -> token, every receipt written to the pty
        self.written: dict[str, float] = {}  # tx -> when it was last written

    def mint(self) -> tuple[str, str]:
        tx, token = self.backend.mint_receipt(DEMO_VENUE, self.rng.randrange(500, 4000, 50))
        self.tokens[tx] = token
        return tx, token

    def write(self, tx: str) -> None:
        self.written[tx] = time.monotonic()
        self.scanner.write(self.tokens[tx])

    def scan(self, tx: str) -> str:
        """Write the receipt to the pty and wait for the outcome the kiosk records."""
        before = len(self.journal.receipt_history(tx))
        # The same text within the repeat window is ignored silently, by design.
        quiet = self.written.get(tx, float("-inf")) + REPEAT_WINDOW_S + 0.05 - time.monotonic()
        if quiet > 0:
            time.sleep(quiet)
        self.write(tx)
        rows = wait_for(
            lambda: self.journal.receipt_history(tx)[before:], OUTCOME_S, f"the outcome of {tx}"
        )
        return str(rows[0].outcome)


@pytest.fixture
def rig(
    tmp_path: Path, refbackend: ReferenceBackend, demo_client: tuple[str, str]
) -> Iterator[tuple[KioskProcess, Customer, Journal]]:
    config = write_config(tmp_path, refbackend, demo_client)
    scanner = Scanner(tmp_path / "scanner")
    journal = Journal.open(tmp_path / "journal.db")
    kiosk = KioskProcess(config, tmp_path, journal, scanner)
    counter = Customer(refbackend, scanner, journal, random.Random(SEED))
    try:
        yield kiosk, counter, journal
    finally:
        kiosk.close()
        journal.close()
        scanner.close()
        if not refbackend.running:
            refbackend.resume()


@pytest.mark.timeout(90)
def test_kill_at_random_moments_every_accepted_receipt_checked_once(
    rig: tuple[KioskProcess, Customer, Journal],
    refbackend: ReferenceBackend,
    demo_client: tuple[str, str],
) -> None:
    kiosk, counter, journal = rig
    rng = counter.rng
    faults = refbackend.faults
    db = BackendDb(refbackend.db)
    kills: list[str] = []

    kiosk.start()
    first_tx, _ = counter.mint()
    assert counter.scan(first_tx) == "checked"  # a successful sync: offline acceptance allowed

    for round_no in range(ROUNDS):
        for _ in range(rng.randint(2, 4)):
            action = rng.choice(["scan", "scan", "drop", "offline", "rescan"])
            if action == "offline" and refbackend.running:
                refbackend.pause()
            elif action != "offline" and not refbackend.running and rng.random() < 0.7:
                refbackend.resume()
            if action == "drop":
                faults.drop_after_commit = 1
            if action == "rescan":
                tx = rng.choice(sorted(counter.tokens))
                word = counter.scan(tx)
                assert word in ("already_checked", *ACCEPTED, "needs_network"), (tx, word)
            else:
                tx, _ = counter.mint()
                word = counter.scan(tx)
                assert word in ACCEPTED, (round_no, action, tx, word, kiosk.tail())
            faults.clear()

        moment = rng.choice(["checking", "dropped", "idle", "anytime", "offline"])
        kills.append(moment)
        if moment != "offline" and not refbackend.running:
            refbackend.resume()
        tx, _ = counter.mint()
        if moment == "checking":
            faults.delaying.clear()
            faults.delay_s = 0.4
            counter.write(tx)
            faults.delaying.wait(5.0)
            time.sleep(rng.uniform(0.0, 0.45))
        elif moment == "dropped":
            faults.drop_after_commit = 1
            counter.write(tx)
            wait_for(partial(db.is_checked, tx), OUTCOME_S, f"{tx} committed")
            time.sleep(rng.uniform(0.0, 0.05))
        elif moment == "idle":
            time.sleep(rng.uniform(0.0, 0.2))
        elif moment == "anytime":
            counter.write(tx)
            time.sleep(rng.uniform(0.0, 0.08))
        else:
            if refbackend.running:
                refbackend.pause()
            counter.write(tx)
            time.sleep(rng.uniform(0.0, 0.1))
        kiosk.kill()
        faults.clear()
        if refbackend.running and rng.random() < 0.5:
            refbackend.pause()  # the power cut took the network with it
        kiosk.start()
        # The customer whose scan was cut off scans again after the restart, and another.
        others = sorted(set(counter.tokens) - {tx})
        for again in [tx, rng.choice(others)]:
            word = counter.scan(again)
            assert word in ("already_checked", *ACCEPTED, "needs_network"), (again, word)

    if not refbackend.running:
        refbackend.resume()
    assert kiosk.terminate() == 0, kiosk.tail()

    for _ in range(20):
        done = subprocess.run(
            [sys.executable, "-m", "kiosk", "sync", "--config", str(kiosk.config)],
            capture_output=True,
            timeout=30,
        )
        if done.returncode == 0:
            break
    else:
        pytest.fail(f"kiosk sync never emptied the journal: {done.stdout!r} {done.stderr!r}")
    assert journal.pending_count() == 0

    assert_exactly_once(journal, db, demo_client[0], kills)


def assert_exactly_once(journal: Journal, db: BackendDb, client_id: str, kills: list[str]) -> None:
    context = f"seed {SEED}, kills {kills}"
    outcomes = sorted(journal.outcomes(), key=lambda o: o.id)
    receipts = [o for o in outcomes if o.kind == "receipt" and o.tx is not None]
    accepted = {str(o.tx) for o in receipts if o.outcome in ACCEPTED}
    assert len(accepted) >= ROUNDS, context  # the schedule really exercised the kiosk
    assert not journal.conflicts(), context

    first: dict[str, str] = {}
    for o in receipts:
        first.setdefault(str(o.tx), o.outcome)
    early = {tx: word for tx, word in first.items() if word == "already_checked"}
    assert not early, f"first scan answered already_checked: {early} ({context})"

    checks = db.checks_by("counter-1")
    missing = sorted(tx for tx in accepted if tx not in checks)
    assert not missing, f"accepted here but not checked at the backend: {missing} ({context})"

    rows = journal.conn.execute("SELECT idem_key, tx, kind, state FROM requests").fetchall()
    keys = {str(r["idem_key"]): r for r in rows}
    journal_txs = {str(r["tx"]) for r in rows if r["kind"] == "receipt"}
    unknown = sorted(tx for tx in checks if tx not in journal_txs)
    assert not unknown, f"checked at the backend, unknown to the journal: {unknown} ({context})"

    answers = db.answers(client_id)
    assert answers, context
    stray = [key for key, _, _ in answers if key not in keys]
    assert not stray, f"requests the journal does not hold: {stray} ({context})"
    ok: dict[str, int] = {}
    for key, code, body in answers:
        assert code is not None, f"request {key} never finished at the backend ({context})"
        assert body.get("status") != "already_checked", (
            f"a second check of {body.get('tx')} reached the backend ({context})"
        )
        if code == 200 and body.get("status") == "checked":
            ok[str(body["tx"])] = ok.get(str(body["tx"]), 0) + 1
    twice = {tx: n for tx, n in ok.items() if n != 1}
    assert not twice, f"checked more than once: {twice} ({context})"
    assert set(ok) == set(checks), context
    assert all(r["state"] != "pending" for r in rows), context


@pytest.mark.timeout(60)
def test_kill_while_in_flight_recovered_at_start_and_rescan_is_already_accepted(
    rig: tuple[KioskProcess, Customer, Journal],
    refbackend: ReferenceBackend,
    demo_client: tuple[str, str],
) -> None:
    """A scan whose request reached the backend when the kiosk died: the restarted kiosk
    re-sends it with its key before serving, records the outcome at the scan's time, and
    a rescan is "already accepted here"; one check at the backend, one row of money."""
    kiosk, counter, journal = rig
    db = BackendDb(refbackend.db)
    kiosk.start()
    tx, _ = counter.mint()
    refbackend.faults.delay_s = 1.0  # the kill lands well inside the sleep
    counter.write(tx)
    # The check's key is claimed (a GET of the sync worker may be delayed too, earlier).
    wait_for(lambda: len(db.answers(demo_client[0])) == 1, 5.0, f"{tx} claimed")
    kiosk.kill()  # the backend is processing the check; the kiosk never reads the answer
    wait_for(partial(db.is_checked, tx), OUTCOME_S, f"{tx} committed")
    refbackend.faults.clear()
    assert journal.receipt_history(tx) == []
    (sent,) = [r for r in journal.open_requests() if r.tx == tx]

    kiosk.start()
    (row,) = journal.receipt_history(tx)  # recovered before the first scan was served
    assert (row.outcome, row.synced, row.shown_accepted) == ("checked", True, True)
    assert row.at == sent.created_at
    assert counter.scan(tx) == "already_checked"
    assert [o.outcome for o in journal.receipt_history(tx)] == ["checked", "already_checked"]
    assert kiosk.terminate() == 0, kiosk.tail()

    ok = [
        key
        for key, code, body in db.answers(demo_client[0])
        if code == 200 and body.get("tx") == tx
    ]
    assert ok == [sent.key]
    assert len([k for k, _, b in db.answers(demo_client[0]) if b.get("tx") == tx]) == 1
    money = [o for o in journal.outcomes() if o.tx == tx and o.outcome in ACCEPTED]
    assert len(money) == 1
    assert journal.pending_count() == 0
