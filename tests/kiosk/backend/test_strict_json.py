"""Strict JSON for untrusted text, and the one canonical encoding of request bodies."""

from __future__ import annotations

import json

import pytest

from kiosk.backend import bodies, strict_json


def test_plain_json_parses() -> None:
    assert strict_json.loads('{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}
    assert strict_json.loads(b'{"a": 1}') == {"a": 1}


@pytest.mark.parametrize(
    "text",
    ['{"a": 1, "a": 2}', '{"x": {"b": 1, "b": 1}}', '{"a": NaN}', "[Infinity]", "-Infinity", "{"],
)
def test_duplicates_and_non_json_constants_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        strict_json.loads(text)


def test_canonical_encoding_is_sorted_compact_and_stable() -> None:
    body = bodies.charge("123456789012", venue="ven_a", device="d", service="s", amount_cents=5)
    text = bodies.encode(body)
    assert text == (
        '{"amount_cents":5,"device":"d","paycode":"123456789012","service":"s","venue":"ven_a"}'
    )
    assert bodies.encode(text) == text  # encoded text is sent as is
    assert bodies.encode(json.loads(text)) == text


def test_unsendable_bodies_are_refused() -> None:
    with pytest.raises(ValueError):
        bodies.encode({"n": float("nan")})
    with pytest.raises(ValueError, match="over"):
        bodies.encode({"pad": "x" * bodies.MAX_REQUEST_BYTES})
