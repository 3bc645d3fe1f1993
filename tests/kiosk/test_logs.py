"""Logging setup: journald fields, stderr key=value lines, redaction of tokens and codes."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from kiosk.logs import event, mask_secret, redact, setup_logging

JWS = "eyJhbGciOiJFZERTQSJ9.eyJqdGkiOiJyY18xMjMifQ.c2lnbmF0dXJlLXBhcnQ"


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)


def test_stderr_lines_carry_fields_as_key_value():
    out = io.StringIO()
    setup_logging("info", journald=False, stream=out)
    event(
        logging.getLogger("kiosk.engine"),
        "receipt checked",
        tx="tx_8f2c",
        outcome="checked",
        amount_cents=2500,
        note="two words",
    )
    line = out.getvalue().strip()
    assert line.endswith(
        "INFO kiosk.engine: receipt checked tx=tx_8f2c outcome=checked amount_cents=2500 "
        'note="two words"'
    )


def test_setup_is_idempotent_and_honours_level():
    out = io.StringIO()
    setup_logging("warning", journald=False, stream=out)
    setup_logging("warning", journald=False, stream=out)
    log = logging.getLogger("kiosk.x")
    log.info("hidden")
    log.warning("shown")
    assert out.getvalue().count("shown") == 1
    assert "hidden" not in out.getvalue()


def test_unknown_level_is_refused():
    with pytest.raises(ValueError, match="log level must be one of"):
        setup_logging("loud", journald=False)


def test_bad_field_name_is_refused():
    with pytest.raises(ValueError, match="log field name"):
        event(logging.getLogger("kiosk"), "x", **{"bad-name": 1})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"scanned {JWS} at desk", "scanned [token] at desk"),
        ("paycode 123456789012 typed", "paycode [code] typed"),
        ("paycode 1234 5678 9012 typed", "paycode [code] typed"),
        ("Authorization: Bearer abcdefghijklmnop", "Authorization: Bearer [token]"),
        ("paycode=123456789012,", "paycode=[code],"),
        ("amount 2500 tx_8f2c 1234567890123", "amount 2500 tx_8f2c 1234567890123"),
        ("key 1b4e28ba-2fa1-11d2-883f-123456789012", "key 1b4e28ba-2fa1-11d2-883f-123456789012"),
        ("tx_123456789012", "tx_123456789012"),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected


def test_tokens_codes_and_secrets_never_reach_the_output():
    out = io.StringIO()
    setup_logging("debug", journald=False, stream=out)
    mask_secret("s3cr3t-client-value")
    log = logging.getLogger("kiosk.backend")
    log.info("token %s code %s", JWS, "123456789012")
    event(
        log, "charge", tx="tx_1", paycode="123456789012", body=f"{{'t': '{JWS}'}}", n=123456789012
    )
    log.debug("posting with secret s3cr3t-client-value")
    try:
        raise ValueError(f"cannot parse {JWS}")
    except ValueError:
        log.exception("decode failed")
    text = out.getvalue()
    assert "eyJ" not in text
    assert "123456789012" not in text
    assert "s3cr3t-client-value" not in text
    assert "token [token] code [code]" in text
    assert "paycode=[code]" in text and "n=[code]" in text
    assert "ValueError: cannot parse [token]" in text
    assert "[secret]" in text


def test_journald_handler_sends_structured_fields():
    pytest.importorskip("systemd.journal", reason="systemd-python is in the systemd extra")
    sent: list[tuple[str, dict[str, Any]]] = []
    setup_logging(
        "info",
        journald=True,
        journal_send=lambda message, /, **fields: sent.append((message, fields)),
    )
    event(
        logging.getLogger("kiosk.engine"),
        f"paycode {JWS} charged",
        tx="tx_77",
        outcome="charged",
        amount_cents=1500,
        level=logging.WARNING,
    )
    assert len(sent) == 1
    message, fields = sent[0]
    assert message == "paycode [token] charged"
    assert fields["KIOSK_TX"] == "tx_77"
    assert fields["KIOSK_OUTCOME"] == "charged"
    assert fields["KIOSK_AMOUNT_CENTS"] == 1500
    assert fields["PRIORITY"] == "4"
    assert fields["SYSLOG_IDENTIFIER"] == "kiosk"
    assert fields["LOGGER"] == "kiosk.engine"
    assert all(name == name.upper() for name in fields)  # record attributes filtered out
    assert "eyJ" not in repr(fields)


def test_every_journal_entry_names_the_device_and_venue():
    pytest.importorskip("systemd.journal", reason="systemd-python is in the systemd extra")
    sent: list[dict[str, Any]] = []
    setup_logging(
        "info",
        journald=True,
        journal_send=lambda message, /, **fields: sent.append(fields),
        device="counter-1",
        venue="0f6c0b7e-5a4d-4c2e-9d51-3f1a2b3c4d5e",
    )
    logging.getLogger("kiosk.service").info("ready")
    event(logging.getLogger("kiosk.engine"), "checked", tx="rcp_9", outcome="checked")
    assert len(sent) == 2
    for fields in sent:
        assert fields["KIOSK_DEVICE"] == "counter-1"
        assert fields["KIOSK_VENUE"] == "0f6c0b7e-5a4d-4c2e-9d51-3f1a2b3c4d5e"
    assert sent[1]["KIOSK_TX"] == "rcp_9" and sent[1]["KIOSK_OUTCOME"] == "checked"
    assert "KIOSK_TX" not in sent[0]
    # Set up again without them (other commands): no identity fields.
    sent.clear()
    setup_logging("info", journald=True, journal_send=lambda m, /, **f: sent.append(f))
    logging.getLogger("kiosk").info("plain")
    assert len(sent) == 1
    assert not {"KIOSK_DEVICE", "KIOSK_VENUE"} & set(sent[0])


def test_journald_is_chosen_only_when_stderr_is_the_journal_stream(tmp_path):
    pytest.importorskip("systemd.journal", reason="systemd-python is in the systemd extra")
    probe = (
        "import logging, os, sys\n"
        "from kiosk.logs import setup_logging\n"
        "setup_logging()\n"
        "print(type(logging.getLogger().handlers[-1]).__name__)\n"
    )
    err = tmp_path / "stderr"
    with err.open("w") as handle:
        st = os.fstat(handle.fileno())
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        as_journal = subprocess.run(
            [sys.executable, "-c", probe],
            env=env,
            stderr=handle,
            capture_output=False,
            stdout=subprocess.PIPE,
            text=True,
            check=True,
            timeout=30,
        )
    env["JOURNAL_STREAM"] = "1:1"
    elsewhere = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert as_journal.stdout.strip() == "JournalHandler"
    assert elsewhere.stdout.strip() == "StreamHandler"


def test_stderr_under_journal_without_module_uses_priority_prefix(tmp_path):
    probe = (
        "import logging, sys\n"
        "sys.modules['systemd'] = sys.modules['systemd.journal'] = None  # not installed\n"
        "from kiosk import journald\n"
        f"journald.SOCKET = {str(tmp_path / 'no-journal-socket')!r}\n"
        "from kiosk.logs import setup_logging\n"
        "setup_logging()\n"
        "logging.getLogger('kiosk.x').error('disk full')\n"
    )
    err = tmp_path / "stderr"
    with err.open("w") as handle:
        st = os.fstat(handle.fileno())
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        subprocess.run(
            [sys.executable, "-c", probe], env=env, stderr=handle, check=True, timeout=30
        )
    lines = err.read_text().splitlines()
    assert lines[0].startswith("<4>kiosk: neither systemd-python nor journald's socket")
    assert lines[1] == "<3>kiosk.x: disk full"
