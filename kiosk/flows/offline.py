"""Limits for accepting receipts while the backend cannot be reached (config ``[offline]``)."""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.config import OfflineConfig


@dataclass(frozen=True)
class OfflinePolicy:
    """Decides whether one more receipt may be accepted offline."""

    cfg: OfflineConfig

    def refusal(
        self,
        amount_cents: int,
        *,
        exposure: tuple[int, int],
        last_sync: float | None,
        now: float,
    ) -> str | None:
        """None when the receipt may be accepted offline, else the reason word.

        *exposure* is (count, cents) of offline checks not yet uploaded;
        *last_sync* the unix time of the last successful exchange with the backend.
        """
        if not self.cfg.enabled:
            return "offline_disabled"
        if last_sync is None or now - last_sync >= self.cfg.max_age_hours * 3600:
            return "stale_sync"
        if amount_cents > self.cfg.max_amount_cents:
            return "limit_amount"
        count, total = exposure
        if count + 1 > self.cfg.max_count:
            return "limit_count"
        if total + amount_cents > self.cfg.max_total_cents:
            return "limit_total"
        return None
