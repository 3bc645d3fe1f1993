"""Fuzzing the whole scan path: classify, verify, the engine's handling, the result screen.

Every input — random bytes decoded leniently, huge lines, control characters,
RTL and emoji, JWS-shaped text with wrong parts, nested base64, JSON bombs in a
header or payload, claims signed by the trusted key, and real tokens of the
reference backend mutated (bit flips, truncation, part swaps, re-encoding) —
must end in an outcome word and a screen in fi, sv and en, with no exception
escaping and no alarm, in bounded time and memory.

Inputs run through a real Counter (engine, journal, sync worker) against the
reference backend on 127.0.0.1, after ``classify`` has been timed on them in
the test thread. The number of inputs is ``KIOSK_FUZZ_EXAMPLES`` (default
``DEFAULT_BUDGET``, sized for the normal test run) spread over the tests by
weight; a long run:

    KIOSK_FUZZ_EXAMPLES=100000 .venv/bin/pytest tests/kiosk/test_fuzz_scan.py -s

Generation is derandomised, so every run feeds the same inputs.
"""

from __future__ import annotations

import base64
import collections
import importlib.util
import json
import os
import queue
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.serial_scanner import MAX_LINE_BYTES, LineFramer
from kiosk import screens, tokens
from kiosk.events import Scan, ScanFault
from kiosk.journal import Journal
from kiosk.languages import LANGUAGES
from kiosk.tokens import BareCode, KeySet, Paycode, Receipt, Scanned, Unrecognised, classify
from kiosk.views import OUTCOME_WORDS, Alarm, Outcome, Result, TechInfo
from refbackend import DEMO_VENUE
from refbackend import tokens as signer
from refbackend.keys import key_path_for, load_or_create

DEFAULT_BUDGET = 5000
BUDGET = int(os.environ.get("KIOSK_FUZZ_EXAMPLES", DEFAULT_BUDGET))
SHARES = {"text": 0.25, "jws": 0.15, "bombs": 0.1, "claims": 0.15, "mutated": 0.25, "screens": 0.1}
CLASSIFY_LIMIT_S = 0.050
REASONS = frozenset(
    {
        "not_smartum",
        "too_long",
        "not_ascii",
        "malformed",
        "bad_alg",
        "bad_typ",
        "bad_iss",
        "unknown_kid",
        "bad_signature",
        "bad_claims",
        "expired",
    }
)
LANGS = LANGUAGES
RAN: collections.Counter[str] = collections.Counter()
SEEN: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)


def report(name: str) -> None:
    """Print how many inputs went through and what came of them (visible with -s)."""
    common = ", ".join(f"{k} {n}" for k, n in SEEN[name].most_common(8))
    print(f"\n{name}: {RAN[name]} inputs (budget {examples(name)} of {BUDGET}): {common}")
    assert RAN[name] >= 0.8 * examples(name)


def examples(name: str) -> int:
    return max(20, round(BUDGET * SHARES[name]))


def fuzz_settings(name: str) -> settings:
    return settings(
        max_examples=examples(name),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def timeout_for(name: str) -> pytest.MarkDecorator:
    return pytest.mark.timeout(max(120, examples(name) // 10))


def _flow_fixtures() -> Any:
    """The simulated counter of tests/kiosk/flows/conftest.py (make_sim), reused here."""
    path = Path(__file__).resolve().parent / "flows" / "conftest.py"
    spec = importlib.util.spec_from_file_location("kiosk_flow_fixtures_fuzz", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_sim = _flow_fixtures().make_sim


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def sign_raw(key: Ed25519PrivateKey, header: bytes, payload: bytes) -> str:
    head, body = b64(header), b64(payload)
    return f"{head}.{body}.{b64(key.sign(f'{head}.{body}'.encode()))}"


def timed_classify(text: str, keys: KeySet, issuer: str) -> Scanned:
    """classify(), which must finish in CLASSIFY_LIMIT_S (best of three if the first was slow)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        scanned = classify(text, keys, issuer, now=time.time(), clock_trusted=True)
        best = min(best, time.perf_counter() - started)
        if best < CLASSIFY_LIMIT_S:
            break
    assert best < CLASSIFY_LIMIT_S, f"classify took {best * 1000:.1f} ms on {len(text)} chars"
    assert isinstance(scanned, Receipt | Paycode | BareCode | Unrecognised)
    if isinstance(scanned, Unrecognised):
        assert scanned.reason in REASONS, scanned
    return scanned


def render_everywhere(outcome: Outcome) -> None:
    assert outcome.word in OUTCOME_WORDS
    for lang in LANGS:
        image = screens.render(Result(outcome), lang)
        assert image.size == (screens.WIDTH, screens.HEIGHT) and image.mode == "1"


class ScanPath:
    """Feeds texts to a running simulated counter the way its sources would."""

    def __init__(self, sim: Any, name: str) -> None:
        self.sim = sim
        self.name = name
        self.keys: KeySet = sim.counter.keys.keys
        self.issuer: str = sim.cfg.backend.issuer
        b = sim.cfg.backend
        self.limit_s = b.connect_timeout + b.read_timeout + 2.0
        assert len(self.keys) == 1, "the counter has not fetched the backend's keys"

    def events(self, text: str) -> list[Scan | ScanFault]:
        """A camera delivers a QR text as it is; a longer line only comes from a scanner,
        whose framer turns it into a fault."""
        raw = text.encode("utf-8", "surrogatepass")
        if len(raw) <= MAX_LINE_BYTES:
            return [Scan(text, "camera", time.monotonic())]
        return LineFramer("serial", 0.5).feed(raw + b"\n", time.monotonic())

    def check(self, text: str) -> tuple[Scanned, list[Outcome]]:
        RAN[self.name] += 1
        scanned = timed_classify(text, self.keys, self.issuer)
        outcomes = []
        for event in self.events(text):
            started = time.monotonic()
            self.sim.counter.submit(event)
            try:
                outcome = self.sim.outcome(timeout=self.limit_s + 5.0)
            except queue.Empty:
                pytest.fail(f"no outcome for {_show(text)}; last view {self._last_view()}")
            took = time.monotonic() - started
            assert took < self.limit_s, f"{took:.2f} s for {_show(text)}"
            self._no_alarm(text)
            render_everywhere(outcome)
            outcomes.append(outcome)
            SEEN[self.name][f"{outcome.word}/{outcome.reason or '-'}"] += 1
        if isinstance(scanned, Unrecognised):
            words = {o.word for o in outcomes}
            assert words <= {"invalid", "paycode_expired"}, (words, _show(text))
        return scanned, outcomes

    def finish(self) -> None:
        """Every outcome shown was journaled first; report the run."""
        shown = sum(SEEN[self.name].values())
        with Journal.open(self.sim.cfg.journal.path) as journal:
            assert len(journal.outcomes(limit=10**9)) == shown
        report(self.name)

    def _no_alarm(self, text: str) -> None:
        while True:
            try:
                view = self.sim.views.get_nowait()
            except queue.Empty:
                return
            assert not isinstance(view, Alarm), (view, _show(text))

    def _last_view(self) -> object:
        return self.sim.counter.screen.last_view


def _show(text: str) -> str:
    return repr(text[:120]) + (f"... ({len(text)} chars)" if len(text) > 120 else "")


@pytest.fixture
def scan_path(make_sim: Callable[..., Any], request: pytest.FixtureRequest) -> ScanPath:
    sim = make_sim(
        buttons=False, scanner={"repeat_window_scanner": 0.0, "repeat_window_camera": 0.0}
    )
    return ScanPath(sim, request.node.name)


# --- strategies -----------------------------------------------------------------------------

NASTY = (
    "\u202e\u202d\u200f\u200e\u2066\u2069"  # bidi overrides and isolates
    "\u200b\u200d\ufeff\u00ad"  # zero width, BOM, soft hyphen
    "\x00\x1b\x7f\x85\x9b\r\n\t\x0b\x0c"  # C0/C1 controls, line ends
    "😀👍🏽🇫🇮\U000e0041\U0010ffff"  # emoji, flag, tag, last code point
    "١٢٣٤٥٦٧٨٩٠١٢"  # Arabic-Indic digits
    "１２３ｅｙＪ．"  # full-width
    "äöåÄÖÅ€"
    ".eyJ-_="
)

lenient_bytes = st.builds(
    lambda raw, codec: raw.decode(*codec),
    st.binary(max_size=700),
    st.sampled_from(
        [("utf-8", "replace"), ("latin-1",), ("utf-8", "surrogateescape"), ("utf-16", "replace")]
    ),
)
nasty_text = st.text(alphabet=st.sampled_from(NASTY) | st.characters(), max_size=400)
huge_lines = st.builds(
    lambda unit, n, tail: unit * n + tail,
    st.sampled_from(["A", ".", "eyJ", "eyJ.", "9", "\u202e", "😀", "a.b.", "=", " ", "\x00"]),
    st.integers(min_value=700, max_value=120_000),
    st.sampled_from(["", ".x.y", "\n", "123456789012"]),
)
digits = st.from_regex(r"\s{0,2}[0-9０-９]{10,14}\s{0,2}", fullmatch=True)
any_text = st.one_of(lenient_bytes, nasty_text, huge_lines, digits)

b64_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
header_dicts = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["EdDSA", "none", "HS256", "RS256", "eddsa", ""]) | json_values,
        "kid": st.text(max_size=20) | json_values,
        "typ": st.sampled_from([tokens.RECEIPT_TYP, tokens.PAYCODE_TYP, "JWT"]) | json_values,
        "crit": json_values,
        "jku": st.just("http://127.0.0.1:1/jwks"),
        "b64": st.booleans(),
        "zip": st.just("DEF"),
    },
)
segments = st.one_of(
    st.builds(lambda v: b64(json.dumps(v).encode()), json_values | header_dicts),
    st.text(alphabet=b64_alphabet, max_size=120),
    st.builds(b64, st.binary(max_size=90)),
    st.just(""),
)
jws_shaped = st.one_of(
    st.builds(lambda a, b, c: f"{a}.{b}.{c}", segments, segments, segments),
    st.builds(lambda parts: ".".join(parts), st.lists(segments, min_size=1, max_size=6)),
)


def _bomb(kind: str, n: int) -> bytes:
    return {
        "array": b"[" * n + b"]" * n,
        "open": b"[" * n,
        "object": b'{"a":' * n + b"1" + b"}" * n,
        "int": b'{"amt":' + b"9" * n + b"}",
        "float": b'{"amt":1' + b"0" * n + b".5e-999}",
        "inf": b'{"amt":1e999,"iat":-1e999,"exp":1e999}',
        "string": b'{"vnm":"' + b"x" * n + b'"}',
        "escapes": b'{"vnm":"' + b"\\ud800\\u0000\\u202e" * (n // 18 + 1) + b'"}',
        "keys": b"{" + b",".join(b'"k%d":0' % i for i in range(n // 8 + 1)) + b"}",
        "dupes": b'{"iss":"a"' + b',"iss":"b"' * (n // 10 + 1) + b"}",
    }[kind]


bomb_kinds = st.sampled_from(
    ["array", "open", "object", "int", "float", "inf", "string", "escapes", "keys", "dupes"]
)

# --- tests: text of every kind ---------------------------------------------------------------


@timeout_for("text")
def test_any_text_gives_an_outcome_and_a_screen(scan_path: ScanPath) -> None:
    scan_path.name = "text"

    @fuzz_settings("text")
    @given(any_text)
    def run(text: str) -> None:
        scanned, _ = scan_path.check(text)
        if isinstance(scanned, Receipt | Paycode):
            pytest.fail(f"random text verified as a token: {_show(text)}")

    run()
    scan_path.finish()


@timeout_for("jws")
def test_jws_shaped_text_with_wrong_parts(scan_path: ScanPath) -> None:
    scan_path.name = "jws"

    @fuzz_settings("jws")
    @given(jws_shaped)
    def run(text: str) -> None:
        scanned, _ = scan_path.check(text)
        assert not isinstance(scanned, Receipt | Paycode), _show(text)

    run()
    scan_path.finish()


@timeout_for("bombs")
def test_json_bombs_in_header_and_payload(scan_path: ScanPath, refkey: Ed25519PrivateKey) -> None:
    scan_path.name = "bombs"
    kid = signer.kid_for(refkey.public_key())
    good_header = json.dumps({"alg": "EdDSA", "kid": kid, "typ": tokens.RECEIPT_TYP}).encode()

    @fuzz_settings("bombs")
    @given(bomb_kinds, st.integers(min_value=1, max_value=3000), st.sampled_from(["h", "p", "s"]))
    def run(kind: str, n: int, where: str) -> None:
        bomb = _bomb(kind, n)
        if where == "h":  # in the header: refused before any signature check
            text = f"{b64(bomb)}.{b64(b'{}')}.{b64(bytes(64))}"
        elif where == "p":  # in a payload the trusted key signed: reaches the claim parser
            text = sign_raw(refkey, good_header, bomb)
        else:  # in a payload with someone else's signature
            text = f"{b64(good_header)}.{b64(bomb)}.{b64(bytes(64))}"
        scanned, outcomes = scan_path.check(text)
        assert isinstance(scanned, Unrecognised), (kind, n, where, scanned)
        assert all(o.word == "invalid" for o in outcomes), outcomes

    run()
    scan_path.finish()


@timeout_for("claims")
def test_claims_signed_by_the_trusted_key(scan_path: ScanPath, refkey: Ed25519PrivateKey) -> None:
    """What a broken backend could sign: every claim of any type; never an unhandled case."""
    scan_path.name = "claims"
    kid = signer.kid_for(refkey.public_key())
    issuer = scan_path.issuer
    receipt_claims = {
        "iss": issuer,
        "jti": "tx_" + "A" * 16,
        "ven": DEMO_VENUE,
        "vnm": "Studio",
        "vad": "Katu 1",
        "amt": 1000,
        "cur": "EUR",
        "ben": "massage",
        "iat": 1_790_000_000,
    }
    paycode_claims = {
        "iss": issuer,
        "jti": "pc_" + "B" * 16,
        "ben": "massage",
        "iat": 1_790_000_000,
        "exp": 1_790_000_300,
        "code": "123456789012",
    }
    names = st.sampled_from(sorted({*receipt_claims, *paycode_claims, "extra"}))
    claim_values = st.one_of(
        json_values,
        st.integers(min_value=-(2**70), max_value=2**70),
        st.text(alphabet=st.sampled_from(NASTY) | st.characters(), max_size=250),
        st.from_regex(r"(tx|pc|ven)_[0-9A-Za-z]{14,18}", fullmatch=True),
        st.sampled_from(["EUR", "massage", "exercise", issuer, 0, -1, 10**7, 10**7 + 1]),
        st.sampled_from(["\ud800", "a\udc80b", "\x85\u2029\n", 4_102_444_800, 2**63]),
    )

    @fuzz_settings("claims")
    @given(
        st.booleans(),
        st.dictionaries(names, claim_values, max_size=3),
        st.sets(names, max_size=1),
        st.integers(min_value=0, max_value=10**6),
    )
    def run(is_receipt: bool, changed: dict[str, Any], dropped: set[str], salt: int) -> None:
        base = dict(receipt_claims if is_receipt else paycode_claims)
        # a fresh id per example, so each one is a new transaction for the engine
        base["jti"] = base["jti"][:3] + f"{salt:016d}"
        claims = {k: v for k, v in {**base, **changed}.items() if k not in dropped}
        typ = tokens.RECEIPT_TYP if is_receipt else tokens.PAYCODE_TYP
        header = json.dumps({"alg": "EdDSA", "kid": kid, "typ": typ}).encode()
        text = sign_raw(refkey, header, json.dumps(claims).encode())
        scanned, outcomes = scan_path.check(text)
        if isinstance(scanned, Receipt):
            assert 0 < scanned.amount_cents <= 10_000_000 and scanned.currency == "EUR"
            assert tokens.TX_SHAPE.fullmatch(scanned.tx)
        if isinstance(scanned, Unrecognised):
            assert all(o.word in ("invalid", "paycode_expired") for o in outcomes), outcomes

    run()
    scan_path.finish()


# --- tests: real tokens, mutated --------------------------------------------------------------


@pytest.fixture
def refkey(scan_path: ScanPath) -> Ed25519PrivateKey:
    """The reference backend's own signing key (its key file beside the database)."""
    return load_or_create(key_path_for(scan_path.sim.backend.db)).private


def _mutations(originals: list[str], attacker: Ed25519PrivateKey, kid: str) -> Any:
    def flip(t: str, data: st.DataObject) -> str:
        chars = list(t) or ["A"]
        for _ in range(data.draw(st.integers(1, 3))):
            i = data.draw(st.integers(0, len(chars) - 1))
            chars[i] = chr(ord(chars[i]) ^ (1 << data.draw(st.integers(0, 7))))
        return "".join(chars)

    def truncate(t: str, data: st.DataObject) -> str:
        return t[: data.draw(st.integers(0, max(0, len(t) - 1)))]

    def splice(t: str, data: st.DataObject) -> str:
        i = data.draw(st.integers(0, len(t)))
        j = data.draw(st.integers(i, min(len(t), i + 8)))
        return t[:i] + data.draw(st.text(alphabet=NASTY + b64_alphabet, max_size=6)) + t[j:]

    def swap(t: str, data: st.DataObject) -> str:
        other = data.draw(st.sampled_from(originals)).split(".")
        mine = t.split(".")
        pick = data.draw(st.lists(st.booleans(), min_size=3, max_size=3))
        parts = [o if p else m for m, o, p in zip(mine, other, pick, strict=True)]
        return ".".join(data.draw(st.permutations(parts)))

    def reencode(t: str, data: st.DataObject) -> str:
        head, body, sig = t.split(".")
        how = data.draw(st.integers(0, 9))
        if how == 0:  # padding
            return ".".join(p + "=" * (-len(p) % 4) for p in (head, body, sig))
        if how == 1:  # standard alphabet instead of url-safe
            return t.replace("-", "+").replace("_", "/")
        if how == 2:  # nested base64: the whole token encoded once or twice
            once = base64.b64encode(t.encode()).decode()
            return (
                once
                if data.draw(st.booleans())
                else base64.urlsafe_b64encode(once.encode()).decode()
            )
        if how == 3:  # nested base64 inside a part
            return f"{head}.{b64(body.encode())}.{sig}"
        if how == 4:  # same claims, other JSON spelling: the signed bytes differ
            claims = json.loads(unb64(body))
            return f"{head}.{b64(json.dumps(claims, indent=1).encode())}.{sig}"
        if how == 5:
            return t.upper() if data.draw(st.booleans()) else t.lower()
        if how == 6:  # inside a URL or a JSON document
            return data.draw(
                st.sampled_from([f"https://pay.smartum.fi/r?t={t}", json.dumps({"token": t})])
            )
        if how == 7:  # invisible characters around or inside
            i = data.draw(st.integers(0, len(t)))
            return (
                t[:i]
                + data.draw(st.sampled_from(["\u200b", "\ufeff", " ", "\t", "\u202e"]))
                + t[i:]
            )
        if how == 8:  # longer expiry or higher amount, old signature kept
            claims = json.loads(unb64(body))
            claims.update({"exp": 4_000_000_000} if "exp" in claims else {"amt": 999_999})
            return f"{head}.{b64(json.dumps(claims).encode())}.{sig}"
        # re-signed by an attacker's key under the trusted kid, with a long expiry
        claims = json.loads(unb64(body))
        claims.update({"exp": 4_000_000_000} if "exp" in claims else {"amt": 999_999})
        header = json.loads(unb64(head))
        header["kid"] = data.draw(st.sampled_from([kid, "attacker"]))
        return sign_raw(attacker, json.dumps(header).encode(), json.dumps(claims).encode())

    ops = [flip, truncate, splice, swap, reencode]

    @st.composite
    def mutated(draw: Callable[..., Any]) -> str:
        original = draw(st.sampled_from(originals))
        data = draw(st.data())
        text = original
        for _ in range(draw(st.integers(1, 2))):
            op = draw(st.sampled_from(ops))
            try:
                text = op(text, data)
            except (ValueError, TypeError, AttributeError):  # not three JSON parts any more
                text = flip(text, data)
        return text

    return mutated()


@timeout_for("mutated")
def test_mutated_real_tokens_never_pass_for_something_else(
    scan_path: ScanPath, refkey: Ed25519PrivateKey
) -> None:
    scan_path.name = "mutated"
    backend = scan_path.sim.backend
    other = backend.create_venue("Toinen Studio", "Muualla 2")
    kid = signer.kid_for(refkey.public_key())
    expired = signer.sign_paycode(
        refkey,
        kid,
        issuer=scan_path.issuer,
        jti="pc_" + "E" * 16,
        code="999999999999",
        issued_at=int(time.time()) - 3600,
    )
    originals = [
        backend.mint_receipt(DEMO_VENUE, 6500)[1],
        backend.mint_receipt(DEMO_VENUE, 2000, ben="exercise")[1],
        backend.mint_receipt(other["id"], 5000)[1],
        backend.mint_paycode(50_000)["token"],
        expired,
    ]
    genuine = set()
    for token in originals:
        scanned = timed_classify(token, scan_path.keys, scan_path.issuer)
        assert isinstance(scanned, Receipt | Paycode) or token is expired, scanned
        genuine.add(replace(scanned, token="") if not isinstance(scanned, Unrecognised) else None)

    @fuzz_settings("mutated")
    @given(_mutations(originals, Ed25519PrivateKey.generate(), kid))
    def run(text: str) -> None:
        scanned, outcomes = scan_path.check(text)
        if isinstance(scanned, Receipt | Paycode):
            # Only an equivalent spelling of a genuine token verifies, with its claims intact.
            assert replace(scanned, token="") in genuine, _show(text)
        for outcome in outcomes:
            if outcome.accepted:
                assert isinstance(scanned, Receipt | Paycode), (outcome, _show(text))

    run()
    scan_path.finish()


# --- tests: screens ---------------------------------------------------------------------------

local_times = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
outcomes = st.builds(
    Outcome,
    word=st.sampled_from(OUTCOME_WORDS),
    kind=st.sampled_from(["receipt", "charge", "cancel"]),
    tx=st.none() | st.text(max_size=30),
    amount_cents=st.none() | st.integers(min_value=-(10**12), max_value=10**12),
    venue_name=st.text(alphabet=st.sampled_from(NASTY) | st.characters(), max_size=200),
    at=st.none() | local_times,
    checked_at=st.none() | local_times,
    checked_by=st.none() | st.text(max_size=40),
    service_name=st.text(alphabet=st.sampled_from(NASTY) | st.characters(), max_size=120),
    balance_cents=st.none() | st.integers(min_value=-(10**12), max_value=10**12),
    reason=st.sampled_from(sorted(REASONS)) | st.text(max_size=30),
)


@timeout_for("screens")
def test_any_outcome_renders_in_every_language() -> None:
    @fuzz_settings("screens")
    @given(outcomes)
    def run(outcome: Outcome) -> None:
        RAN["screens"] += 1
        render_everywhere(outcome)

    run()
    report("screens")


# --- worst inputs: time and memory of classify ------------------------------------------------

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KID = signer.kid_for(KEY.public_key())
HEADER = json.dumps({"alg": "EdDSA", "kid": KID, "typ": tokens.RECEIPT_TYP}).encode()


def worst_inputs() -> list[tuple[str, str]]:
    nested = "." * 2
    cases = [
        ("1 MB of dots", "." * 1_000_000),
        ("1 MB JWS-looking", "eyJ" + "A" * 1_000_000 + ".e30.AA"),
        ("1 MB of emoji", "😀" * 250_000),
        ("1 MB RTL and controls", "\u202e\x00\x1b" * 330_000),
        ("1 MB of digits", "1" * 1_000_000),
        ("deep array header", f"{b64(b'[' * 1400)}.e30.{b64(bytes(64))}"),
        ("deep object payload, signed", sign_raw(KEY, HEADER, b'{"a":' * 250 + b"1" + b"}" * 250)),
        ("deep array payload, signed", sign_raw(KEY, HEADER, b"[" * 1400 + b"]" * 1400)),
        ("1400-digit integer, signed", sign_raw(KEY, HEADER, b'{"amt":' + b"9" * 1400 + b"}")),
        ("1e999, signed", sign_raw(KEY, HEADER, b'{"amt":1e999,"iat":-1e999}')),
        ("many keys, signed", sign_raw(KEY, HEADER, _bomb("keys", 1400))),
        ("max length token", sign_raw(KEY, HEADER, _bomb("string", 1300))),
        ("nested base64", base64.b64encode(base64.b64encode(b"x" * 600)).decode() + nested),
        ("2049 bytes", "eyJ" + "A" * 2042 + ".e.e"),
    ]
    return cases


@pytest.mark.parametrize(("name", "text"), worst_inputs(), ids=[n for n, _ in worst_inputs()])
def test_worst_inputs_are_fast_and_small(name: str, text: str) -> None:
    keys = KeySet({KID: KEY.public_key()})
    scanned = timed_classify(text, keys, "https://iss")
    assert isinstance(scanned, Unrecognised), (name, scanned)
    tracemalloc.start()
    try:
        classify(text, keys, "https://iss", now=time.time(), clock_trusted=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Nothing beyond a copy of the text and a small fixed amount.
    size = len(text.encode("utf-8", "surrogatepass"))
    assert peak < 256 * 1024 + 2 * size, f"{name}: peak {peak} bytes for {size} bytes"
    render_everywhere(Outcome("invalid", "receipt", reason=scanned.reason))


@pytest.mark.parametrize("char", ["\n", "\r", "\x85", "\x1c", "\u2028", "\u2029", "\x00", "\x1b"])
def test_line_breaks_and_controls_in_names_draw_as_spaces(char: str) -> None:
    # A venue name with NEL or a paragraph separator once made the text layout raise.
    name = f"Studio{char}Aurinko"
    views = [
        Result(Outcome("checked", "receipt", "tx_" + "A" * 16, 6500, name)),
        Result(Outcome("charged", "charge", amount_cents=6500, service_name=name)),
        Alarm("journal", name),
        TechInfo("counter-1", "192.0.2.1", "1.0", 0, True, venue=name),
    ]
    for view in views:
        spaced = replace_text(view, name, "Studio Aurinko")
        for lang in LANGS:
            assert screens.render(view, lang) == screens.render(spaced, lang)


def replace_text(view: Any, old: str, new: str) -> Any:
    if isinstance(view, Result):
        return Result(replace_text(view.outcome, old, new))
    fields = {k: (new if v == old else v) for k, v in view.__dict__.items()}
    return type(view)(**fields)
