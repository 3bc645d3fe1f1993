"""A new member of a closed set is named everywhere it must reach, never quietly mistreated.

On a copy of the source tree, one member is added to each enum the counter decides
on (token kind, request kind, outcome word, source kind, language; and the
reference backend's token type and transaction kind). mypy must then report an
error inside every dispatch function listed below for it (a ``match`` ending in
``assert_never``); for the word and the language, the fast completeness tests
(texts in every language, a text for every refusal) must fail as well.

The copy lives in one folder per checkout under the system's temporary directory
and keeps its files' times, so mypy's cache there makes each run after the first
incremental: the five firmware variants and two backend variants take a few
seconds each.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("kiosk", "hardware", "refbackend", "pyproject.toml")
FAST_TESTS = (
    "tests/conftest.py",
    "tests/kiosk/test_vocabulary.py",
    "tests/kiosk/screens/test_screens_i18n.py",
)


@dataclass(frozen=True)
class Variant:
    """One member added to one enum, and the functions mypy must then name."""

    path: str  # the module holding the enum
    enum: str
    member: str  # the line added to the enum's body
    sites: frozenset[tuple[str, str]]  # (module path, enclosing function)
    fast_test_fails: bool = False


VARIANTS = {
    "token kind (a gift voucher)": Variant(
        "kiosk/vocabulary.py",
        "TokenKind",
        'VOUCHER = "voucher"',
        frozenset(
            {
                ("kiosk/vocabulary.py", "request_for"),
                ("kiosk/tokens.py", "typ_of"),
                ("kiosk/tokens.py", "_verified"),
                ("kiosk/flows/outcomes.py", "refusal"),
                ("kiosk/cli/mint_cmd.py", "run"),
            }
        ),
    ),
    "request kind (a voucher redemption)": Variant(
        "kiosk/vocabulary.py",
        "RequestKind",
        'REDEEM = "redeem"',
        frozenset(
            {
                ("kiosk/vocabulary.py", "is_payment"),
                ("kiosk/vocabulary.py", "answer_word"),
                ("kiosk/flows/delivery.py", "send_once"),
                ("kiosk/flows/context.py", "_deadline_for"),
                ("kiosk/screens/pages.py", "_checking_text"),
                ("kiosk/vocabulary.py", "accepted_word"),
            }
        ),
    ),
    "outcome word (redeemed)": Variant(
        "kiosk/vocabulary.py",
        "Word",
        'REDEEMED = "redeemed"',
        frozenset(
            {
                ("kiosk/vocabulary.py", "meaning"),
                ("kiosk/screens/results.py", "_refusal_texts"),
            }
        ),
        fast_test_fails=True,
    ),
    "source kind (an NFC reader)": Variant(
        "kiosk/source_kinds.py",
        "SourceKind",
        'NFC = "nfc"',
        frozenset({("kiosk/source_kinds.py", "needs"), ("kiosk/sources.py", "spec")}),
    ),
    "language (Estonian)": Variant(
        "kiosk/languages.py",
        "Language",
        'ET = "et"',
        frozenset({("kiosk/languages.py", "formats")}),
        fast_test_fails=True,
    ),
    "backend token type (a voucher)": Variant(
        "refbackend/vocabulary.py",
        "TokenType",
        'VOUCHER = "smartum-voucher+jwt"',
        frozenset({("refbackend/tokens.py", "verify")}),
    ),
    "backend transaction kind (a redemption)": Variant(
        "refbackend/vocabulary.py",
        "TxKind",
        'REDEMPTION = "redemption"',
        frozenset({("refbackend/ledger.py", "_refund")}),
    ),
}

_ERROR = re.compile(r"^(?P<path>[\w/.]+\.py):(?P<line>\d+): error: ", re.M)


def _sync(source: Path, target: Path) -> None:
    """Make *target* a copy of *source*, keeping the times of unchanged files."""
    if source.is_file():
        if not target.exists() or target.read_bytes() != source.read_bytes():
            shutil.copy2(source, target)
        return
    target.mkdir(parents=True, exist_ok=True)
    wanted = {p.name for p in source.iterdir() if p.name != "__pycache__"}
    for stale in {p.name for p in target.iterdir()} - wanted - {"__pycache__"}:
        path = target / stale
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    for name in wanted:
        _sync(source / name, target / name)


@pytest.fixture(scope="module")
def tree() -> Iterator[Path]:
    """The copy, held under a lock (one run at a time per checkout)."""
    key = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    base = Path(tempfile.gettempdir()) / f"kiosk-exhaustive-{os.getuid()}-{key}"
    base.mkdir(exist_ok=True)
    with open(base / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        copy = base / "tree"
        for name in (*COPIED, *FAST_TESTS):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            _sync(ROOT / name, copy / name)
        yield copy


def _function_at(path: Path, line: int) -> str:
    """The innermost function around *line* of *path* ("" at module level)."""
    found, depth = "", -1
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            end = node.end_lineno or node.lineno
            if node.lineno <= line <= end and node.lineno > depth:
                found, depth = node.name, node.lineno
    return found


def _mypy(copy: Path) -> str:
    command = [sys.executable, "-m", "mypy", "--cache-dir", str(copy.parent / "mypy-cache")]
    done = subprocess.run(command, cwd=copy, capture_output=True, text=True, timeout=600)
    return done.stdout + done.stderr


def _added(text: str, enum: str, member: str) -> str:
    """*text* with *member* appended to the body of ``class enum``."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"class {enum}("))
    last = start
    for i in range(start + 1, len(lines)):
        if lines[i].strip() and not lines[i].startswith((" ", "\t")):
            break
        if re.match(r"\s+[A-Z_]+ = ", lines[i]):
            last = i
    lines.insert(last + 1, f"    {member}\n")
    return "".join(lines)


def test_the_tree_as_it_is_is_clean(tree: Path) -> None:
    out = _mypy(tree)
    assert "Success: no issues found" in out, out


@pytest.mark.parametrize("name", list(VARIANTS))
def test_a_new_member_is_named_at_every_dispatch_site(tree: Path, name: str) -> None:
    variant = VARIANTS[name]
    module = tree / variant.path
    original = module.read_text()
    try:
        module.write_text(_added(original, variant.enum, variant.member))
        out = _mypy(tree)
        named = {
            (m["path"], _function_at(tree / m["path"], int(m["line"])))
            for m in _ERROR.finditer(out)
        }
        missing = variant.sites - named
        assert not missing, f"mypy did not name {sorted(missing)}; it said:\n{out}"
        if variant.fast_test_fails:
            fast = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FAST_TESTS[1:]],
                cwd=tree,
                capture_output=True,
                text=True,
                timeout=300,
                env={**os.environ, "PYTHONPATH": str(tree)},
            )
            assert fast.returncode != 0, fast.stdout
    finally:
        shutil.copy2(ROOT / variant.path, module)  # back to the checkout's file and time
