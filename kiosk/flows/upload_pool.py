"""The upload pool: a few uploads in flight at once, each on its own kept-alive connection.

Replay of a long outbox is bound by round trips, not by the backend: a small
pool of threads, each with its own :class:`~kiosk.backend.client.BackendClient`
(one ``requests.Session``, so one kept-alive connection), sends a batch of
journaled requests concurrently. The threads only talk HTTP; the journal stays
with the thread that owns it (:mod:`kiosk.flows.sync`), which settles the
answers of a batch in one commit.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from kiosk.errors import BackendError, BackendProtocolError
from kiosk.flows.delivery import send_once
from kiosk.journal import Request

if TYPE_CHECKING:
    from kiosk.backend.client import BackendClient
    from kiosk.flows.delivery import Result

IN_FLIGHT = 4

Answer = tuple[Request, "Result | BackendError"]
"""A request and its answer, or the error that stood for one."""


class Flight:
    """A batch in flight (:meth:`UploadPool.start`)."""

    def __init__(self, futures: list[Future[Answer]]) -> None:
        self._futures = futures

    def answers(self) -> list[Answer]:
        """Wait for every answer; in the batch's order."""
        return [f.result() for f in self._futures]


class UploadPool:
    """Sends batches with up to *width* requests in flight; ``close`` ends the threads
    and the clients it made (the given *client* stays the caller's)."""

    def __init__(self, client: BackendClient, width: int = IN_FLIGHT) -> None:
        self._base = client
        self._width = max(1, width)
        self._idle: queue.SimpleQueue[BackendClient] = queue.SimpleQueue()
        self._idle.put(client)
        self._made: list[BackendClient] = []
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    @property
    def width(self) -> int:
        """How many requests may be in flight at once."""
        return self._width

    def send(self, batch: list[Request]) -> list[Answer]:
        """Send every request of *batch* once; answers in the batch's order."""
        if len(batch) <= 1 or self._width == 1:
            return [self._one(r) for r in batch]
        return self.start(batch).answers()

    def start(self, batch: list[Request]) -> Flight:
        """Start sending every request of *batch* once on the pool's threads and return at
        once: the caller's thread is free (to write the journal) while they are in flight."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._width, thread_name_prefix="kiosk-upload")
        return Flight([self._pool.submit(self._one, r) for r in batch])

    def _one(self, request: Request) -> Answer:
        client = self._take()
        try:
            return request, send_once(client, request)
        except BackendError as exc:
            return request, exc
        except ValueError as exc:  # a row the client cannot send (e.g. a malformed tx)
            return request, BackendProtocolError(f"request {request.id} cannot be sent: {exc}")
        finally:
            self._idle.put(client)

    def _take(self) -> BackendClient:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if len(self._made) + 1 < self._width:
                twin = self._base.fork()
                self._made.append(twin)
                return twin
        return self._idle.get()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for twin in self._made:
            twin.close()
        self._made.clear()

    def __enter__(self) -> UploadPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
