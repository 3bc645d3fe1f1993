"""The journal: durable outbox and outcome record, migrations, corruption and full disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kiosk.errors import JournalError, JournalFull
from kiosk.journal import SCHEMA_VERSION, Journal
from kiosk.vocabulary import AmountCheck


def test_begin_is_durable_and_settle_once(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with Journal.open(path) as j:
        req = j.begin("receipt", {"token": "t", "offline": False}, tx="tx_a", amount_cents=100)
        assert req.state == "pending" and len(req.key) == 36
    # A new connection (a restarted kiosk) sees the request with its key and exact body.
    with Journal.open(path) as j:
        (again,) = j.open_requests()
        assert again.key == req.key and again.body == {"token": "t", "offline": False}
        assert j.settle(again.id, "checked", 200, {"tx": "tx_a"}, word="checked") is True
        assert j.settle(again.id, "checked", 200, {"tx": "tx_a"}, word="checked") is False
        assert j.open_requests() == []
        assert j.request(again.id).status == "checked"


def test_wal_and_full_sync(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as j:
        assert j.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert j.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert j.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_go_offline_only_for_never_delivered(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as j:
        a = j.begin("receipt", {"offline": False}, tx="tx_a")
        j.attempted(a.id, "refused", maybe_delivered=False)
        assert j.go_offline(a.id, {"offline": True}).body == {"offline": True}
        b = j.begin("receipt", {"offline": False}, tx="tx_b")
        j.attempted(b.id, "read timeout", maybe_delivered=True)
        # May have reached the backend: the body must stay as it was sent.
        assert j.go_offline(b.id, {"offline": True}).body == {"offline": False}
        j.void(b.id, "x")
        assert j.request(b.id).state == "pending"


def test_offline_exposure_and_conflict_resolution(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as j:
        r1 = j.begin("receipt", {}, tx="tx_1", amount_cents=5000)
        r2 = j.begin("receipt", {}, tx="tx_2", amount_cents=2500)
        j.record(
            "receipt",
            "checked_offline",
            tx="tx_1",
            amount_cents=5000,
            request_id=r1.id,
            synced=False,
            shown_accepted=True,
        )
        j.record(
            "receipt",
            "checked_offline",
            tx="tx_2",
            amount_cents=2500,
            request_id=r2.id,
            synced=False,
            shown_accepted=True,
        )
        assert j.offline_exposure() == (2, 7500)
        j.resolve(r1.id, "checked")
        j.resolve(r2.id, "already_checked")
        assert j.offline_exposure() == (0, 0)
        words = {o.tx: o.outcome for o in j.outcomes()}
        assert words == {"tx_1": "checked_offline", "tx_2": "conflict"}
        assert [c.tx for c in j.conflicts()] == ["tx_2"]


def test_corrupt_journal_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    path.write_bytes(b"this is not a database" * 100)
    with Journal.open(path) as j:
        assert j.moved_aside is not None and j.moved_aside.exists()
        assert j.moved_aside.read_bytes().startswith(b"this is not")
        j.begin("receipt", {}, tx="tx_x")  # the new journal works
        assert j.pending_count() == 1


def test_unwritable_location_raises_journal_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(JournalError):
        Journal.open(blocker / "sub" / "j.db")


def test_full_disk_is_translated_and_keeps_what_is_stored(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as j:
        kept = j.begin("receipt", {"n": 1}, tx="tx_kept")
        # Cap the file at its current size: the next insert meets SQLITE_FULL.
        pages = j.conn.execute("PRAGMA page_count").fetchone()[0]
        j.conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(JournalFull) as info:
            for n in range(1000):
                j.begin("receipt", {"pad": "x" * 4000, "n": n}, tx=f"tx_{n}")
        assert "full" in str(info.value)
        assert j.request(kept.id).body == {"n": 1}


def test_migration_from_version_1(tmp_path: Path) -> None:
    from kiosk.journal import schema as journal_module

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(journal_module.MIGRATIONS[1])
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO requests (kind, idem_key, tx, body, created_at) VALUES"
        " ('receipt', 'k-1', 'tx_old', '{}', 1.0)"
    )
    conn.commit()
    conn.close()
    with Journal.open(path) as j:
        (req,) = j.open_requests()
        assert req.key == "k-1" and req.maybe_delivered is False
        assert j.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_schema_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(JournalError, match="newer than this kiosk"):
        Journal.open(path)


def test_prune_keeps_unsynced(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as j:
        j.record("receipt", "checked", tx="tx_old", now=1000.0)
        j.record("receipt", "checked_offline", tx="tx_unsynced", synced=False, now=1000.0)
        j.record("receipt", "checked", tx="tx_new", now=10_000_000.0)
        assert j.prune(90, now=10_000_000.0) == 1
        assert {o.tx for o in j.outcomes()} == {"tx_unsynced", "tx_new"}


def test_use_after_close(tmp_path: Path) -> None:
    j = Journal.open(tmp_path / "j.db")
    j.close()
    j.close()
    with pytest.raises(JournalError, match="closed"):
        j.pending_count()


def test_full_disk_while_settling_leaves_the_request_pending_to_retry(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as j:
        req = j.begin("receipt", {"n": 1}, tx="tx_settle")
        pages = j.conn.execute("PRAGMA page_count").fetchone()[0]
        j.conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(JournalFull):
            j.settle(
                req.id, "checked", 200, {"tx": "tx_settle", "pad": "x" * 50_000}, word="checked"
            )
        with pytest.raises(JournalFull):
            j.record("receipt", "checked", tx="tx_settle", reason="x" * 50_000)
        # Nothing half-written: still pending, with its key and body, and no outcome row.
        assert [(r.key, r.body, r.state) for r in j.open_requests()] == [
            (req.key, {"n": 1}, "pending")
        ]
        assert j.outcomes() == []
        j.conn.execute("PRAGMA max_page_count = 1073741823")  # space is back
        assert j.settle(req.id, "checked", 200, {"tx": "tx_settle"}, word="checked") is True


def test_another_programs_database_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match=r"another program's database .*photos.*journal\.path"):
        Journal.open(path)


def test_migration_to_version_3_keeps_outcomes_without_an_amount_check(tmp_path: Path) -> None:
    from kiosk.journal import schema as journal_module

    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path)
    conn.executescript(journal_module.MIGRATIONS[1])
    conn.executescript(journal_module.MIGRATIONS[2])
    conn.execute("PRAGMA user_version = 2")
    conn.execute(
        "INSERT INTO outcomes (kind, tx, outcome, amount_cents, at) VALUES"
        " ('receipt', 'tx_old', 'checked', 6500, 1.0)"
    )
    conn.commit()
    conn.close()
    with Journal.open(path) as j:
        (old,) = j.outcomes()
        assert (old.tx, old.service, old.amount_check, old.amount_difference_cents) == (
            "tx_old",
            "",
            None,
            None,
        )
        j.record(
            "receipt",
            "checked",
            tx="tx_new",
            amount_cents=6000,
            service="Klassinen hieronta 60 min",
            amount_check=AmountCheck.MISMATCH,
            amount_difference_cents=-500,
        )
        new = next(o for o in j.outcomes() if o.tx == "tx_new")
        assert (new.service, new.amount_check, new.amount_difference_cents) == (
            "Klassinen hieronta 60 min",
            "mismatch",
            -500,
        )


def test_migration_from_version_4_keeps_the_journal_and_adds_the_pruned_tally(
    tmp_path: Path,
) -> None:
    from kiosk.figures import outcome_counts
    from kiosk.journal import schema as journal_module

    path = tmp_path / "v4.db"
    conn = sqlite3.connect(path)
    for version in (1, 2, 3, 4):
        conn.executescript(journal_module.MIGRATIONS[version])
    conn.execute("PRAGMA user_version = 4")
    conn.execute(
        "INSERT INTO requests (kind, idem_key, tx, body, created_at, failures, next_try_at)"
        " VALUES ('receipt', 'k-4', 'tx_pending', '{}', 5.0, 2, 99.0)"
    )
    conn.execute(
        "INSERT INTO outcomes (kind, tx, outcome, amount_cents, at) VALUES"
        " ('receipt', 'tx_old', 'checked', 6500, 1.0), ('receipt', 'tx_c', 'conflict', 700, 2.0)"
    )
    conn.commit()
    conn.close()
    with Journal.open(path) as j:
        assert j.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert j.conn.execute("SELECT COUNT(*) FROM pruned_outcomes").fetchone()[0] == 0
        (req,) = j.open_requests()
        assert (req.key, req.tx, req.failures, req.next_try_at) == ("k-4", "tx_pending", 2, 99.0)
        assert sorted((o.tx, o.outcome, o.amount_cents) for o in j.outcomes()) == [
            ("tx_c", "conflict", 700),
            ("tx_old", "checked", 6500),
        ]
        assert outcome_counts(j) == {"checked": 1, "conflict": 1}
        assert j.prune(1, now=10 * 86400.0) == 2
        assert j.outcomes() == [] and outcome_counts(j) == {"checked": 1, "conflict": 1}
