"""One HTTP exchange with the backend: send, bound the wait, read and cap the answer.

Library errors of ``requests``/``urllib3`` become kiosk errors here, by what they
say about delivery (see :mod:`kiosk.backend.client`). A public call of the
client may make several exchanges (token, request, resend after a 401); they
share one deadline, ``Timeouts.total`` from the start of the call.
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from kiosk import __version__
from kiosk.backend import strict_json
from kiosk.errors import BackendBusy, BackendProtocolError, BackendUnreachable, OutcomeUnknown

log = logging.getLogger("kiosk.backend")

MAX_ANSWER_BYTES = 256 * 1024  # any larger answer is outside the contract
USER_AGENT = f"smartum-kiosk/{__version__}"
MAX_RETRY_AFTER_S = 60.0


@dataclass(frozen=True)
class Timeouts:
    """Limits of one call: TCP/TLS connect, each socket read, and the whole call."""

    connect: float = 2.0
    read: float = 5.0
    total: float = 10.0  # hard deadline incl. token fetch and reading the body (slow-loris)

    def for_requests(self) -> tuple[float, float]:
        return (self.connect, self.read)


class Exchange:
    """Sends requests through a caller's session with the kiosk's fixed HTTP rules.

    Every request: explicit timeouts, TLS verified (``ca_bundle`` or the system
    store), no redirects followed, no compression, the kiosk's User-Agent.
    Answers are streamed so that size and total time can be capped while reading.
    The total deadline is checked between reads, so it may be overrun by at most
    one read timeout; a status line and headers trickled slower than that are
    noticed once they are complete.
    """

    def __init__(
        self, base_url: str, session: requests.Session, timeouts: Timeouts, ca_bundle: str
    ) -> None:
        self._base = base_url.rstrip("/")
        self.base_url = base_url
        self._session = session
        self._timeouts = timeouts
        self._verify: str | bool = ca_bundle or True

    def send(
        self,
        method: str,
        path: str,
        deadline: float,
        *,
        headers: Mapping[str, str] | None = None,
        data: bytes | Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> requests.Response:
        """Send and read the status line and headers; the body stays unread (stream)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BackendUnreachable(f"{method} {path}: no time left to send (total deadline)")
        connect, read = self._timeouts.for_requests()
        where = f"{method} {path}"
        try:
            resp = self._session.request(
                method,
                self._base + path,
                params=params,
                data=data,
                auth=auth,
                headers={
                    "User-Agent": USER_AGENT,
                    "Accept": "application/json",
                    "Accept-Encoding": "identity",
                    **(headers or {}),
                },
                timeout=(min(connect, remaining), min(read, remaining)),
                verify=self._verify,
                allow_redirects=False,
                stream=True,
            )
        except requests.ConnectTimeout as exc:
            raise BackendUnreachable(f"{where}: no connection within {connect:g} s") from exc
        except requests.exceptions.SSLError as exc:
            raise BackendUnreachable(
                f"{where}: TLS handshake failed; check backend.ca_bundle and the clock"
            ) from exc
        except requests.ConnectionError as exc:
            if _never_sent(exc):
                raise BackendUnreachable(
                    f"{where}: cannot connect to {urlsplit(self._base).netloc}"
                ) from exc
            raise OutcomeUnknown(f"{where}: connection lost before an answer") from exc
        except requests.Timeout as exc:
            raise OutcomeUnknown(f"{where}: no answer within {read:g} s") from exc
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ) as exc:
            raise BackendUnreachable(f"{where}: unusable backend.url") from exc
        except requests.RequestException as exc:
            raise OutcomeUnknown(f"{where}: request failed ({type(exc).__name__})") from exc
        except ValueError as exc:  # e.g. an unparsable Location header of an answer
            raise BackendProtocolError(f"{where}: unreadable answer ({_short(exc)})") from exc
        if time.monotonic() > deadline:
            resp.close()
            raise OutcomeUnknown(f"{where}: answer too slow (total {self._timeouts.total:g} s)")
        return resp

    def answer(
        self, method: str, path: str, resp: requests.Response, deadline: float
    ) -> tuple[int, dict[str, Any]]:
        """Status and JSON body of an answer, after the rules common to every endpoint."""
        where, status = f"{method} {path}", resp.status_code
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        if 300 <= status < 400:
            resp.close()
            target = _host_of(resp.headers.get("Location", ""))
            raise BackendProtocolError(f"{where}: redirected ({status}) to {target}; not followed")
        if status == 429:  # a definite "not processed": the same request may be sent again
            resp.close()
            raise BackendBusy(f"{where}: backend is rate limiting (HTTP 429)", retry_after)
        if status >= 500:
            resp.close()
            raise OutcomeUnknown(f"{where}: backend answered HTTP {status}", retry_after)
        if status in (400, 413):
            resp.close()
            raise BackendProtocolError(
                f"{where}: backend rejected the request as malformed ({status})"
            )
        doc = self.read_json(where, resp, deadline)
        word = doc.get("status")
        if status == 409 and word == "in_progress":
            raise OutcomeUnknown(f"{where}: still in progress at the backend", retry_after)
        if status == 422 and word == "idempotency_mismatch":
            log.error("%s: Idempotency-Key reused with a different body (kiosk bug)", where)
            raise BackendProtocolError(
                f"{where}: idempotency_mismatch: a key was reused for another body"
            )
        return status, doc

    def read_json(self, where: str, resp: requests.Response, deadline: float) -> dict[str, Any]:
        """Read the whole body within the size cap and the deadline, then parse it."""
        status = resp.status_code
        try:
            ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                raise BackendProtocolError(
                    f"{where}: HTTP {status} with content type {ctype[:60]!r}"
                )
            if resp.headers.get("Content-Encoding", "identity").lower() != "identity":
                raise BackendProtocolError(f"{where}: compressed answer although none was accepted")
            declared = resp.headers.get("Content-Length")
            if declared is not None and not (declared.isascii() and declared.isdigit()):
                raise BackendProtocolError(f"{where}: Content-Length is not a number")
            if declared is not None and int(declared) > MAX_ANSWER_BYTES:
                raise BackendProtocolError(f"{where}: answer of {declared} bytes is over the cap")
            raw = self._read_capped(where, resp, deadline)
        except BaseException:
            resp.close()
            raise
        resp.raw.release_conn()  # read to the end: the connection may be reused
        return parse_json(raw, f"{where} HTTP {status}")

    def _read_capped(self, where: str, resp: requests.Response, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                if time.monotonic() > deadline:
                    raise OutcomeUnknown(
                        f"{where}: answer too slow (total {self._timeouts.total:g} s)"
                    )
                chunk = resp.raw.read1(16384, decode_content=False)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise BackendProtocolError(
                        f"{where}: answer over the {MAX_ANSWER_BYTES} byte cap"
                    )
                chunks.append(chunk)
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            raise OutcomeUnknown(f"{where}: connection lost while reading the answer") from exc


def _host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "?")[:80]
    except ValueError:
        return "?"


def _never_sent(exc: BaseException) -> bool:
    """True if the failure happened while connecting (refused, DNS, unreachable)."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        e = todo.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(
            e,
            urllib3.exceptions.NewConnectionError
            | urllib3.exceptions.ConnectTimeoutError
            | ConnectionRefusedError
            | socket.gaierror,
        ):
            return True
        todo.extend([*e.args, e.__cause__, e.__context__, getattr(e, "reason", None)])
    return False


def parse_json(raw: bytes, where: str) -> dict[str, Any]:
    """Parse a UTF-8 JSON object strictly (no NaN, no duplicate keys). Raises protocol error."""
    try:
        doc = strict_json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise BackendProtocolError(f"{where}: body is not valid JSON ({_short(exc)})") from exc
    if not isinstance(doc, dict):
        raise BackendProtocolError(f"{where}: body is JSON but not an object")
    return doc


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def parse_retry_after(header: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP-date), clamped to 0..60."""
    if not header:
        return None
    text = header.strip()
    if text.isascii() and text.isdigit():
        seconds = float(int(text[:9]))
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def own_session(base_url: str) -> requests.Session:
    """A kept-alive session for the kiosk's own client of *base_url*.

    The environment's proxy settings for *base_url* are read once, here: with requests'
    ``trust_env`` every request would read the whole environment twice and look for
    ``~/.netrc`` (a good part of a loopback request's time). Off, a ``.netrc`` entry for
    the backend's host can no longer replace the kiosk's bearer token either.
    """
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    session.trust_env = False
    return session


def env_ca_bundle() -> str:
    """The CA bundle that requests would take from the environment (``REQUESTS_CA_BUNDLE``,
    ``CURL_CA_BUNDLE``), for a client whose session does not read it (:func:`own_session`)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or ""
