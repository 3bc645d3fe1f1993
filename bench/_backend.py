"""The reference backend in a process of its own, for the benchmarks.

The figures of a benchmark are then the kiosk's alone: the backend's threads
neither share the kiosk's interpreter lock nor count in its memory. Calls go
over a pipe to the backend object of the child (``mint_receipt``, ``pause``,
``resume``, ``create_client``, ...).
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any


class BackendProcess:
    """The reference backend (``--dev``, loopback, free port) in a spawned process."""

    def __init__(self, db: Path, *, rate_limit_per_s: float = 200.0) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve_backend, args=(str(db), rate_limit_per_s, child), daemon=True
        )
        self._proc.start()
        self.url, self.issuer, self.venue = self.call("info")

    def call(self, name: str, *args: Any) -> Any:
        self._conn.send((name, args))
        if not self._conn.poll(30.0):
            raise RuntimeError(f"backend process did not answer {name}")
        ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(value)
        return value

    def close(self) -> None:
        try:
            self.call("stop")
        finally:
            self._proc.join(10.0)

    def __enter__(self) -> BackendProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve_backend(db: str, rate: float, conn: Any) -> None:
    from refbackend import DEMO_VENUE, ReferenceBackend  # here only: not in the kiosk's process

    with ReferenceBackend(
        Path(db), host="127.0.0.1", port=0, dev=True, rate_limit_per_s=rate
    ) as backend:
        while True:
            name, args = conn.recv()
            try:
                if name == "stop":
                    conn.send((True, None))
                    return
                if name == "info":
                    value: Any = (backend.url, backend.issuer, DEMO_VENUE)
                else:
                    value = getattr(backend, name)(*args)
                conn.send((True, value))
            except Exception as exc:  # reported to the caller, which raises it
                conn.send((False, f"{name}: {exc}"))
