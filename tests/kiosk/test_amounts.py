"""Matching a receipt's amount against the price list."""

from __future__ import annotations

import pytest

from kiosk.amounts import match_amount
from kiosk.views import AmountMatch, Service

CLASSIC = Service("svc_1", "Klassinen hieronta 60 min", 6500)
SPORTS = Service("svc_2", "Urheiluhieronta 45 min", 5500)
HOT_STONE = Service("svc_3", "Kuumakivihieronta 60 min", 7900, eligible=False)
FOOT = Service("svc_4", "Jalkahieronta 30 min", 3500)
FREE = Service("svc_5", "Tutustumiskäynti", 0)
PRICE_LIST = (CLASSIC, SPORTS, HOT_STONE, FOOT, FREE)


def test_an_amount_equal_to_one_price_names_that_service() -> None:
    match = match_amount(5500, PRICE_LIST)
    assert match == AmountMatch((SPORTS,), 0)
    assert match is not None and match.matched


def test_a_sum_of_two_services_names_both_in_price_list_order() -> None:
    assert match_amount(6500 + 3500, PRICE_LIST) == AmountMatch((CLASSIC, FOOT))
    assert match_amount(5500 + 3500, PRICE_LIST) == AmountMatch((SPORTS, FOOT))


def test_the_same_service_twice_is_a_sum_of_two() -> None:
    assert match_amount(7000, PRICE_LIST) == AmountMatch((FOOT, FOOT))


def test_a_single_service_wins_over_a_sum() -> None:
    services = (Service("a", "A", 3000), Service("b", "B", 6000))
    assert match_amount(6000, services) == AmountMatch((services[1],))


def test_a_mismatch_gives_the_nearest_service_and_the_signed_difference() -> None:
    over = match_amount(4200, PRICE_LIST)
    assert over == AmountMatch((FOOT,), 700)
    assert over is not None and not over.matched
    assert match_amount(5800, PRICE_LIST) == AmountMatch((SPORTS,), 300)
    assert match_amount(6300, PRICE_LIST) == AmountMatch((CLASSIC,), -200)
    assert match_amount(100, PRICE_LIST) == AmountMatch((FOOT,), -3400)


def test_ineligible_and_free_services_never_match() -> None:
    hot_stone = match_amount(7900, PRICE_LIST)
    assert hot_stone == AmountMatch((CLASSIC,), 1400)  # hot stone is not paid by the benefit
    assert match_amount(3500 + 7900, PRICE_LIST) == AmountMatch((CLASSIC,), 4900)


@pytest.mark.parametrize("services", [(), (HOT_STONE,), (FREE,)])
def test_no_eligible_price_list_gives_no_judgement(services: tuple[Service, ...]) -> None:
    assert match_amount(6500, services) is None


def test_equally_near_services_go_to_the_one_listed_first() -> None:
    services = (Service("a", "A", 4000), Service("b", "B", 5000))
    assert match_amount(4500, services) == AmountMatch((services[0],), 500)
    assert match_amount(4500, services[::-1]) == AmountMatch((services[1],), -500)
    assert match_amount(4500, PRICE_LIST) == AmountMatch((SPORTS,), -1000)  # not the 35 € one
