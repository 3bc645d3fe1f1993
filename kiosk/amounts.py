"""A receipt's amount against the venue's price list: which eligible service it pays for.

The customer types the amount into the app, so 45 € for a 65 € massage happens.
:func:`match_amount` finds the eligible service that costs exactly the amount, or
two whose prices add up to it (the same service twice counts: two visits), and
otherwise the nearest eligible service with the difference. The receipt stays
checked either way: the money was paid and the staff decides.

    match = match_amount(4500, venue.services)
    if match is not None and not match.matched:
        ...  # amber "check the amount"
"""

from __future__ import annotations

from collections.abc import Iterable

from kiosk.venue import Service
from kiosk.views import AmountMatch, Outcome
from kiosk.vocabulary import AmountCheck

__all__ = ["AmountMatch", "match_amount", "paid_for"]


def match_amount(amount_cents: int, services: Iterable[Service]) -> AmountMatch | None:
    """The service(s) *amount_cents* pays for, or the nearest one; None without a price list.

    Only eligible services with a price above zero count. Ties go to the service
    listed first (for the nearest one: the one listed first among equally near).
    """
    eligible = [s for s in services if s.eligible and s.price_cents > 0]
    if not eligible:
        return None
    for service in eligible:
        if service.price_cents == amount_cents:
            return AmountMatch((service,))
    for i, first in enumerate(eligible):
        for second in eligible[i:]:
            if first.price_cents + second.price_cents == amount_cents:
                return AmountMatch((first, second))
    nearest = min(eligible, key=lambda s: abs(amount_cents - s.price_cents))
    return AmountMatch((nearest,), amount_cents - nearest.price_cents)


def paid_for(outcome: Outcome) -> tuple[str, AmountCheck | None, int | None]:
    """What *outcome* paid for, as the journal and history keep it.

    ``(service, amount_check, amount_difference_cents)``: a checked receipt's matched
    service(s) (joined by `` + ``) with ``ok`` and 0, or its nearest service with
    ``mismatch`` and the difference; otherwise the charged service name (if any) and
    no check.
    """
    match = outcome.amount_match
    if match is None:
        return outcome.service_name, None, None
    names = " + ".join(s.name for s in match.services)
    check = AmountCheck.OK if match.matched else AmountCheck.MISMATCH
    return names, check, match.difference_cents
