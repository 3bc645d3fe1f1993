"""Staff PIN hashes: salted scrypt in a self-describing string; only the right PIN matches."""

from __future__ import annotations

import pytest

from kiosk.staff_pin import hash_pin, hash_problem, pin_problem, verify_pin


def test_hash_matches_only_its_pin() -> None:
    stored = hash_pin("4711")
    assert stored.startswith("$scrypt$ln=14,r=8,p=1$")
    assert "4711" not in stored
    assert verify_pin("4711", stored)
    assert not verify_pin("4712", stored)
    assert not verify_pin("47110", stored)
    assert not verify_pin("", stored)


def test_each_hash_has_its_own_salt() -> None:
    first, second = hash_pin("123456"), hash_pin("123456")
    assert first != second
    assert verify_pin("123456", first) and verify_pin("123456", second)


@pytest.mark.parametrize("pin", ["123", "123456789", "12a4", " 1234", "１２３４", ""])
def test_pin_is_four_to_eight_ascii_digits(pin: str) -> None:
    assert pin_problem(pin) == "a staff PIN is 4 to 8 digits (0-9)"
    with pytest.raises(ValueError, match="4 to 8 digits"):
        hash_pin(pin)


def test_malformed_hashes_never_match() -> None:
    good = hash_pin("2580")
    assert hash_problem(good) == ""
    scheme, params, salt, key = good.split("$")[1:]
    bad = [
        "1234",
        "",
        f"$pbkdf2${params}${salt}${key}",
        f"$scrypt$ln=30,r=8,p=1${salt}${key}",  # would need 128 GiB: refused, not run
        f"$scrypt${params}${salt}$!!{key[2:]}",
        f"$scrypt${params}${salt}",
    ]
    for text in bad:
        assert hash_problem(text), text
        assert not verify_pin("2580", text), text
    # A changed key byte is a different hash: the PIN no longer matches.
    flipped = key[:-2] + ("A" if key[-2] != "A" else "B") + key[-1]
    assert not verify_pin("2580", f"${scheme}${params}${salt}${flipped}")
