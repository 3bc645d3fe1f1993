"""Logging: journald with structured fields under systemd, key=value lines on stderr otherwise.

``setup_logging`` installs one handler on the root logger. Under systemd (stderr is
the journal stream named by ``JOURNAL_STREAM``) and with systemd-python present it
is a ``systemd.journal.JournalHandler`` (without systemd-python, as on stock Raspberry
Pi OS, :mod:`kiosk.journald` speaks journald's native protocol with the same fields):
each :func:`event` becomes a journal entry
with fields ``KIOSK_TX``, ``KIOSK_OUTCOME``, ``KIOSK_<NAME>``, searchable with
``journalctl -u kiosk KIOSK_OUTCOME=needs_network``. Every entry also carries
``KIOSK_DEVICE`` and ``KIOSK_VENUE`` when given (``[device] id`` and ``venue``), so a
chain's central journal (systemd-journal-remote) tells its counters apart:
``journalctl --directory=... KIOSK_DEVICE=counter-1``. Elsewhere a plain stderr
formatter prints the event fields as ``tx=... outcome=...``.

Every record passes a redaction filter first: anything that looks like a JWS
(``eyJ...``), a bearer token, a 12-digit payment code or a value registered with
:func:`mask_secret` is replaced before any handler sees it, in the message, its
arguments, the fields and the traceback text. Only tx ids are meant to be logged.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable
from typing import IO, Any, ClassVar

from kiosk import journald

__all__ = ["event", "mask_secret", "redact", "setup_logging"]

FIELD_PREFIX = "KIOSK_"
_FIELD_NAME = re.compile(r"[A-Z0-9][A-Z0-9_]{0,60}")
_JOURNAL_FIELD = re.compile(r"[A-Z0-9][A-Z0-9_]*")

_JWS = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
# Alone, not inside an id: a uuid group or tx id may hold 12 digits by chance.
_CODE = re.compile(r"(?<![\w-])\d{4}[ -]?\d{4}[ -]?\d{4}(?![\w-])")
_secrets: set[str] = set()
_secrets_lock = threading.Lock()

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

JournalSend = Callable[..., Any]


def mask_secret(value: str) -> None:
    """Never let *value* (e.g. the client secret) appear in a log line. Any thread."""
    if len(value) >= 4:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """*text* with tokens, payment codes and registered secrets replaced."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, "[secret]")
    text = _JWS.sub("[token]", text)
    text = _BEARER.sub(r"\1 [token]", text)
    return _CODE.sub("[code]", text)


def setup_logging(
    level: str = "info",
    *,
    journald: bool | None = None,
    stream: IO[str] | None = None,
    journal_send: JournalSend | None = None,
    device: str | None = None,
    venue: str | None = None,
) -> None:
    """Route all logging to journald or stderr. Calling again replaces the earlier setup.

    *journald*: None picks journald when stderr is the journal stream; True insists
    (falls back to stderr with a warning if neither systemd-python nor journald's
    socket is there); False uses *stream* (default stderr).
    *journal_send* replaces ``systemd.journal.send`` (tests record fields with it).
    *device* and *venue* (the kiosk's id and venue, nothing secret) become the fields
    ``KIOSK_DEVICE`` and ``KIOSK_VENUE`` of every journal entry.
    Raises ValueError for an unknown *level*. Call from the main thread at start-up.
    """
    try:
        levelno = _LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"log level must be one of {', '.join(_LEVELS)}, not {level!r}") from None
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_kiosk", False)]:
        root.removeHandler(old)
        old.close()

    under_journal = _stderr_is_journal()
    want_journal = under_journal if journald is None else journald
    handler: logging.Handler | None = None
    missing_module = False
    if want_journal:
        handler = _journal_handler(journal_send, _identity_fields(device, venue))
        missing_module = handler is None
    if handler is None:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        handler.setFormatter(_TextFormatter(syslog_prefix=under_journal and stream is None))
    handler.addFilter(_RedactFilter())
    handler._kiosk = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(levelno)
    if missing_module:
        logging.getLogger("kiosk").warning(
            "neither systemd-python nor journald's socket is there; logging to stderr"
            " without journal fields"
        )


def event(
    logger: logging.Logger,
    message: str,
    *,
    tx: str | None = None,
    outcome: str | None = None,
    level: int = logging.INFO,
    **fields: object,
) -> None:
    """Log *message* with structured fields KIOSK_TX, KIOSK_OUTCOME and KIOSK_<NAME>.

    Field names are letters, digits and underscores (``amount_cents`` becomes
    ``KIOSK_AMOUNT_CENTS``); a bad name raises ValueError. Any thread.
    """
    extra: dict[str, object] = {}
    if tx is not None:
        extra[FIELD_PREFIX + "TX"] = tx
    if outcome is not None:
        extra[FIELD_PREFIX + "OUTCOME"] = outcome
    for name, value in fields.items():
        key = name.upper()
        if not _FIELD_NAME.fullmatch(key):
            raise ValueError(f"log field name {name!r}: use letters, digits and underscores")
        if value is not None:
            extra[FIELD_PREFIX + key] = value
    logger.log(level, message, extra=extra, stacklevel=2)


def _kiosk_fields(record: logging.LogRecord) -> list[tuple[str, object]]:
    return [(k, v) for k, v in record.__dict__.items() if k.startswith(FIELD_PREFIX)]


class _RedactFilter(logging.Filter):
    """Renders the message, masks secrets in it, its fields and its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        for key, value in _kiosk_fields(record):
            if isinstance(value, str | int) and not isinstance(value, bool):
                masked = redact(str(value))
                if masked != str(value):
                    setattr(record, key, masked)
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class _TextFormatter(logging.Formatter):
    """``time LEVEL logger: message tx=... outcome=...``; under journald, a <N> prefix."""

    _PRIORITY: ClassVar[dict[int, int]] = {
        logging.DEBUG: 7,
        logging.INFO: 6,
        logging.WARNING: 4,
        logging.ERROR: 3,
        logging.CRITICAL: 2,
    }

    def __init__(self, *, syslog_prefix: bool) -> None:
        if syslog_prefix:  # journald adds the time; <N> sets the priority
            super().__init__("%(name)s: %(message)s")
        else:
            super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._syslog_prefix = syslog_prefix

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        pairs = [
            f"{key[len(FIELD_PREFIX) :].lower()}={_quote(value)}"
            for key, value in _kiosk_fields(record)
        ]
        if pairs:
            first, nl, rest = text.partition("\n")
            text = " ".join([first, *pairs]) + nl + rest
        if self._syslog_prefix:
            prio = self._PRIORITY.get(record.levelno, 6)
            text = "\n".join(f"<{prio}>{line}" for line in text.split("\n"))
        return text


def _quote(value: object) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


def _identity_fields(device: str | None, venue: str | None) -> dict[str, str]:
    fields = {FIELD_PREFIX + "DEVICE": device, FIELD_PREFIX + "VENUE": venue}
    return {key: value for key, value in fields.items() if value}


def _journal_handler(
    journal_send: JournalSend | None, identity: dict[str, str]
) -> logging.Handler | None:
    journal: Any
    try:  # Debian python3-systemd, or systemd-python
        journal = importlib.import_module("systemd.journal")
        send = journal_send if journal_send is not None else journal.send
    except ImportError:
        if journal_send is None and not journald.available():
            return None
        send = journal_send if journal_send is not None else journald.send
        journal = None

    def send_valid_fields(message: str, /, **fields: Any) -> Any:
        # JournalHandler passes every LogRecord attribute; keep proper journal fields only.
        kept = {k: v for k, v in fields.items() if _JOURNAL_FIELD.fullmatch(k) and v is not None}
        return send(message, **kept)

    handler: logging.Handler
    if journal is not None:
        handler = journal.JournalHandler(
            sender_function=send_valid_fields, SYSLOG_IDENTIFIER="kiosk", **identity
        )
    else:
        handler = journald.NativeJournalHandler(
            sender_function=send_valid_fields, SYSLOG_IDENTIFIER="kiosk", **identity
        )
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def _stderr_is_journal() -> bool:
    """True when stderr is the journal stream systemd connected (sd_journal_stream_fd docs)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)
