"""The kiosk's Prometheus metrics, written by node_exporter's textfile convention.

``kiosk run`` keeps a :class:`KioskMetrics` (its own CollectorRegistry, never
the process-wide one) and a :class:`TextfileWriter` thread that writes the
registry to ``[metrics] textfile`` every ``[metrics] interval`` seconds and
once more at stop, with ``prometheus_client.write_to_textfile`` (a temporary
file in the same folder, then a rename: node_exporter never reads half a file).

Journal figures (scans by outcome, pending, quarantined, offline exposure,
conflicts, last sync, journal size) are read from the journal at every write,
so counters survive restarts. The two histograms (scan to result, camera
decode) are observed in memory by the running service.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram, Info, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kiosk import __version__
from kiosk.clock import BootClock, Clocks, boot_time, kernel_clock_synced
from kiosk.errors import KioskError
from kiosk.figures import JournalFigures, read_figures
from kiosk.journal import Journal

if TYPE_CHECKING:
    from kiosk.config import Config, MetricsConfig

log = logging.getLogger("kiosk.metrics")

SCAN_RESULT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
DECODE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class Limits:
    """The configured limits, exported so that alert rules compare against them."""

    offline_total_cents: int
    offline_count: int
    min_free_bytes: int
    conflicts_per_day: int = 3

    @classmethod
    def of(cls, cfg: Config) -> Limits:
        return cls(
            offline_total_cents=cfg.offline.max_total_cents,
            offline_count=cfg.offline.max_count,
            min_free_bytes=cfg.journal.min_free_mb * 1024 * 1024,
            conflicts_per_day=cfg.offline.max_conflicts_per_day,
        )


class JournalCollector(Collector):
    """Metric families computed from a :class:`JournalFigures` snapshot at each collect."""

    def __init__(
        self,
        figures: Callable[[], JournalFigures],
        *,
        backend_up: Callable[[], bool],
        clock_synced: Callable[[], bool],
        limits: Limits | None = None,
    ) -> None:
        self._figures = figures
        self._limits = limits
        self._backend_up = backend_up
        self._clock_synced = clock_synced

    def collect(self) -> Iterator[Metric]:
        f = self._figures()
        scans = CounterMetricFamily(
            "kiosk_scans",
            "Scans that reached a result, by outcome (from the journal)",
            labels=["outcome"],
        )
        for outcome, count in sorted(f.outcomes.items()):
            scans.add_metric([outcome], count)
        yield scans
        yield _gauge(
            "kiosk_journal_pending", "Requests waiting for the backend's answer", f.pending
        )
        yield _gauge(
            "kiosk_journal_quarantined", "Requests set aside for a person to look at", f.quarantined
        )
        yield _gauge(
            "kiosk_journal_oldest_pending_timestamp_seconds",
            "Unix time of the oldest request waiting for the backend (absent when none waits)",
            f.oldest_pending_at,
        )
        yield _gauge(
            "kiosk_last_sync_timestamp_seconds",
            "Unix time of the last successful exchange with the backend (absent before the first)",
            f.last_sync,
        )
        yield _gauge(
            "kiosk_offline_exposure_cents",
            "Sum of receipts accepted offline and not yet uploaded, in cents",
            f.offline_exposure_cents,
        )
        yield _gauge(
            "kiosk_offline_checks",
            "Receipts accepted offline and not yet uploaded",
            f.offline_count,
        )
        conflicts = CounterMetricFamily(
            "kiosk_offline_conflicts",
            "Offline checks the backend later found already checked (from the journal)",
        )
        conflicts.add_metric([], f.conflicts)
        yield conflicts
        yield _gauge(
            "kiosk_offline_conflicts_24h",
            "Conflicts of the last 24 h that count (after the last clear-conflicts)",
            f.conflicts_24h,
        )
        yield _gauge("kiosk_backend_up", "1 while the backend answers", int(self._backend_up()))
        yield _gauge(
            "kiosk_clock_synced",
            "1 while the kernel clock is synchronised",
            int(self._clock_synced()),
        )
        yield _gauge("kiosk_journal_bytes", "Size of the journal files in bytes", f.journal_bytes)
        yield _gauge(
            "kiosk_journal_disk_free_bytes",
            "Free space on the journal's file system in bytes",
            f.disk_free_bytes,
        )
        if self._limits is not None:
            lim = self._limits
            yield _gauge(
                "kiosk_offline_limit_cents",
                "[offline] max_total_cents: offline exposure at which offline checks stop",
                lim.offline_total_cents,
            )
            yield _gauge(
                "kiosk_offline_limit_checks",
                "[offline] max_count: offline checks at which offline checks stop",
                lim.offline_count,
            )
            yield _gauge(
                "kiosk_offline_limit_conflicts",
                "[offline] max_conflicts_per_day: conflicts in 24 h that turn offline checks off",
                lim.conflicts_per_day,
            )
            yield _gauge(
                "kiosk_journal_min_free_bytes",
                "[journal] min_free_mb in bytes: below this free space new scans are refused",
                lim.min_free_bytes,
            )


def _gauge(name: str, documentation: str, value: float | None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    if value is not None:
        family.add_metric([], value)
    return family


class KioskMetrics:
    """The kiosk's registry: journal figures, histograms and build info."""

    def __init__(
        self,
        journal_path: Path | str,
        *,
        backend_up: Callable[[], bool] = lambda: False,
        clock_synced: Callable[[], bool] = kernel_clock_synced,
        monotonic: Callable[[], float] = time.monotonic,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
        boot: BootClock = boot_time,
    ) -> None:
        self.journal_path = Path(journal_path)
        self._clocks = lambda: Clocks(clock(), boot(), clock_synced())
        self.registry = CollectorRegistry()
        self.backend_up = backend_up
        self._monotonic = monotonic
        self._journal: Journal | None = None
        self._file_id: tuple[int, int] | None = None
        self.scan_result_seconds = Histogram(
            "kiosk_scan_result_seconds",
            "Time from a scan to its result on the screen",
            buckets=SCAN_RESULT_BUCKETS,
            registry=self.registry,
        )
        self.decode_seconds = Histogram(
            "kiosk_decode_seconds",
            "Time to decode one camera frame",
            buckets=DECODE_BUCKETS,
            registry=self.registry,
        )
        Info("kiosk_build", "The kiosk's release", registry=self.registry).info(
            {"version": __version__}
        )
        self.registry.register(
            JournalCollector(
                self.figures,
                backend_up=lambda: self.backend_up(),
                clock_synced=clock_synced,
                limits=limits,
            )
        )

    @classmethod
    def from_config(cls, cfg: Config) -> KioskMetrics:
        """The metrics of ``kiosk run``: the configured journal and limits."""
        return cls(cfg.journal.path, limits=Limits.of(cfg))

    # --- journal -----------------------------------------------------------------------------

    def figures(self) -> JournalFigures:
        """Read the journal (one connection, opened on first use by the writing thread)."""
        if self._journal is not None and _file_id(self.journal_path) != self._file_id:
            self.close()  # the service moved a damaged journal aside: read the new one
        if self._journal is None:
            # Never recover here: moving a damaged journal aside is the service's decision.
            self._journal = Journal.open(self.journal_path, recover=False)
            self._file_id = _file_id(self.journal_path)
        return read_figures(self._journal, self._clocks())

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # --- observations from the running service -----------------------------------------------

    def scan_answered(self, at: float) -> None:
        """``on_answered`` of the counter: a scan that arrived at *at* (monotonic) has its
        result on the screen."""
        self.scan_result_seconds.observe(max(0.0, self._monotonic() - at))

    def timed_decoder(self, decoder: Any) -> Any:
        """The camera's decoder, with each ``decode`` call timed."""
        return _TimedDecoder(decoder, self.decode_seconds)

    def write(self, path: Path | str) -> None:
        """Write the registry to *path* atomically, readable by all. Raises OSError, KioskError.

        The service's umask is 0077 and node_exporter runs as another user: the file is
        staged under a name node_exporter skips (not ``*.prom``), opened up, then renamed.
        """
        path = Path(path)
        staging = path.with_name(f".{path.name}.staging")
        write_to_textfile(str(staging), self.registry)
        os.chmod(staging, 0o644)
        os.replace(staging, path)


class _TimedDecoder:
    def __init__(self, decoder: Any, histogram: Histogram) -> None:
        self._decoder = decoder
        self._histogram = histogram

    def decode(self, pixels: Any) -> Any:
        with self._histogram.time():
            return self._decoder.decode(pixels)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._decoder, name)


class TextfileWriter:
    """Writes *metrics* to *path* every *interval* seconds and at stop; start() then stop()."""

    def __init__(self, metrics: KioskMetrics, path: Path | str | None, interval: float) -> None:
        self.metrics = metrics
        self.path = Path(path) if path else None  # None: metrics off, start() does nothing
        self.interval = interval
        self.writes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_problem = ""

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("metrics writer already started")
        if self.path is None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kiosk-metrics", daemon=True)
        self._thread.start()
        log.info("metrics written to %s every %.0f s", self.path, self.interval)

    def stop(self, timeout: float = 5.0) -> None:
        """Write a last time and stop; waits at most *timeout* s. Safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)
        if thread.is_alive():
            log.warning("metrics writer did not stop within %.1f s", timeout)

    def _run(self) -> None:
        try:
            while True:
                self.write_once()
                if self._stop.wait(self.interval):
                    break
            self.write_once()  # the figures at stop
        finally:
            self.metrics.close()

    def write_once(self) -> bool:
        """One write; a failure is logged (once per distinct problem), never raised."""
        if self.path is None:
            return False
        try:
            self.metrics.write(self.path)
        except (OSError, KioskError) as exc:
            problem = f"cannot write metrics to {self.path}: {exc}"
            if problem != self._last_problem:
                log.warning("%s (retrying every %.0f s)", problem, self.interval)
                self._last_problem = problem
            self.metrics.close()  # reopen the journal next time
            return False
        if self._last_problem:
            log.info("metrics written to %s again", self.path)
            self._last_problem = ""
        self.writes += 1
        return True


def writer_for(
    section: MetricsConfig, metrics: KioskMetrics, backend_up: Callable[[], bool]
) -> TextfileWriter:
    """The writer for ``kiosk run`` (``cfg.metrics``), not started; with ``[metrics]
    textfile`` empty it does nothing. Start it after the counter (the engine creates the
    journal)."""
    metrics.backend_up = backend_up
    return TextfileWriter(metrics, section.textfile or None, section.interval)


def _file_id(path: Path | str) -> tuple[int, int] | None:
    """Which file is at *path* now (device, inode), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
