"""Configuration: each bad input gives its own message; every problem is reported at once."""

from __future__ import annotations

import dataclasses
import enum
import io
import os
import pty
import re
import select
import sys
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from kiosk.cli import main
from kiosk.config import MASK, SECTIONS, Secret, load_config, parse_config
from kiosk.config.fields import toml_keys
from kiosk.errors import ConfigError
from kiosk.languages import Language

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "kiosk.example.toml"

BASE = """
[device]
id = "counter-1"
venue = "ven_demo0000000000"

[backend]
url = "http://127.0.0.1:8787"
client_id = "abc"
client_secret_file = "secret"
issuer = "https://reference.kiosk.invalid"
"""


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text("s3cret-value\n")
    path.chmod(0o600)
    return path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_minimal_config_loads_with_defaults(tmp_path: Path, secret: Path) -> None:
    cfg = load_config(write(tmp_path, BASE))
    assert cfg.device.id == "counter-1"
    assert cfg.scanner.source == "serial"
    assert cfg.offline.max_amount_cents == 8000
    assert cfg.client_secret.reveal() == "s3cret-value"


def test_secret_is_masked_everywhere(tmp_path: Path, secret: Path) -> None:
    cfg = load_config(write(tmp_path, BASE))
    assert "s3cret" not in repr(cfg)
    assert "s3cret" not in str(cfg.public_dict())
    assert cfg.public_dict()["backend"]["client_secret"] == MASK
    assert str(Secret("x")) == MASK


def test_three_mistakes_are_reported_together(tmp_path: Path, secret: Path) -> None:
    text = BASE + '\n[scanner]\nbaud = 0\nsourse = "serial"\n[display]\nlanguage = "de"\n'
    found = problems(write(tmp_path, text))
    assert len(found) == 3, found
    assert any("scanner.baud: must be at least 300" in p for p in found)
    assert any("scanner.sourse: unknown key (did you mean 'source'?)" in p for p in found)
    assert any("display.language: must be one of fi, sv, en" in p for p in found)
    assert all(p.startswith(str(tmp_path / "kiosk.toml")) for p in found)


def test_a_language_without_texts_is_refused_when_the_config_is_checked(
    tmp_path: Path, secret: Path
) -> None:
    found = problems(write(tmp_path, BASE + '\n[display]\nlanguage = "et"\n'))
    assert [p.split(": ", 1)[1] for p in found] == [
        "display.language: must be one of fi, sv, en; got 'et'"
    ]


def test_the_configured_language_is_one_of_the_display_languages(
    tmp_path: Path, secret: Path
) -> None:
    cfg = load_config(write(tmp_path, BASE + '\n[display]\nlanguage = "sv"\n'))
    assert cfg.display.language is Language.SV


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[offline]\nmax_count = "ten"\n', "offline.max_count: must be a whole number"),
        ("[offline]\nenabled = 1\n", "offline.enabled: must be true or false"),
        ("[camera]\nfps = 0.5\n", "camera.fps: must be at least 1.0"),
        ("[display]\nrotate = 5\n", "display.rotate: must be one of 0, 2"),
        ("[signals]\nrgb_pins = [1, 99, 3]\n", "signals.rgb_pins: list item 99"),
        ("[journl]\n", "journl: unknown section (did you mean 'journal'?)"),
        ("[scanner]\nport = 5\n", "scanner.port: must be a string"),
    ],
)
def test_each_bad_value_has_its_own_message(
    tmp_path: Path, secret: Path, extra: str, message: str
) -> None:
    found = problems(write(tmp_path, BASE + extra))
    assert any(message in p for p in found), found


def test_missing_required_keys_and_sections(tmp_path: Path) -> None:
    found = problems(write(tmp_path, '[device]\nid = "x"\n'))
    assert any("device.venue: missing (required)" in p for p in found)
    assert any("backend: missing section [backend]" in p for p in found)


def test_http_to_remote_host_is_refused(tmp_path: Path, secret: Path) -> None:
    text = BASE.replace("http://127.0.0.1:8787", "http://api.example.fi")
    assert any(
        "plain http is only allowed to loopback" in p for p in problems(write(tmp_path, text))
    )


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    assert "not valid TOML" in problems(write(tmp_path, "[device\n"))[0]
    assert "file not found" in problems(tmp_path / "nope.toml")[0]


def test_group_readable_secret_is_refused_with_chmod_hint(tmp_path: Path, secret: Path) -> None:
    secret.chmod(0o640)
    found = problems(write(tmp_path, BASE))
    assert any("chmod 600" in p for p in found), found


def test_symlinked_and_empty_secret_are_refused(tmp_path: Path, secret: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(secret)
    text = BASE.replace('client_secret_file = "secret"', 'client_secret_file = "link"')
    assert any("is a symlink" in p for p in problems(write(tmp_path, text)))
    secret.write_text("")
    assert any("file is empty" in p for p in problems(write(tmp_path, BASE)))


def test_secret_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "secret").mkdir(mode=0o700)
    assert any("not a regular file" in p for p in problems(write(tmp_path, BASE)))


def test_example_config_passes_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(EXAMPLE)]) == 0
    out, err = capsys.readouterr()
    assert "OK" in out
    assert "kiosk run needs it" in err


def test_example_documents_every_key() -> None:
    raw = tomllib.loads(EXAMPLE.read_text())
    for name, cls in SECTIONS.items():
        documented = set(raw.get(name, {}))
        declared = set(toml_keys(cls))
        assert declared == documented, (name, declared ^ documented)


def example_defaults() -> dict[tuple[str, str], Any]:
    """Each example key with the default it documents: its value, or the value its comment
    names as "(default: X)" where the example shows the wiring instead."""
    documented: dict[tuple[str, str], Any] = {}
    section = ""
    for line in EXAMPLE.read_text().splitlines():
        if match := re.match(r"\[(\w+)\]", line):
            section = match.group(1)
        elif match := re.match(r"(\w+) = ", line):
            value_text, _, comment = line.partition("#")
            named = re.search(r"\(default: (.+?)\)", comment)
            value = tomllib.loads(f"v = {named.group(1)}" if named else value_text)
            documented[(section, match.group(1))] = next(iter(value.values()))
    return documented


def test_example_values_are_the_code_defaults() -> None:
    documented = example_defaults()
    compared = 0
    for name, cls in SECTIONS.items():
        for key, f in toml_keys(cls).items():
            if f.default is dataclasses.MISSING:
                continue  # required: the example shows a placeholder
            value = documented[(name, key)]
            default = f.default
            if isinstance(default, tuple):  # lists, and a scanner source given as one string
                value = tuple(value) if isinstance(value, list) else (value,)
            if isinstance(default, float):  # TOML 24 is read as 24.0 for a number key
                value = float(value) if type(value) is int else value
            if isinstance(default, enum.StrEnum):  # TOML "fi" is read as Language.FI
                value = type(default)(value)
            assert value == default and type(value) is type(default), (name, key, value, default)
            compared += 1
    assert compared >= 50  # 59 keys with a default today: the loop really compared them


def test_example_values_equal_defaults_catches_a_drift() -> None:
    # The comparison above reads values: a changed default in the example is seen.
    assert example_defaults()[("backend", "scan_budget")] == 3.0
    assert example_defaults()[("signals", "led_pin")] == -1  # from its "(default: -1)"
    assert example_defaults()[("display", "address")] == 0x3C


def test_config_check_exit_2_lists_every_problem(
    tmp_path: Path, secret: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, BASE + "[scanner]\nbaud = 1\n[display]\ndriver = 'lcd'\n")
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert main(["config", "check", "--json", str(path)]) == 2


def test_parse_config_never_prints_secret_in_errors(tmp_path: Path, secret: Path) -> None:
    secret.chmod(0o644)
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "device": {"id": "x", "venue": "ven_x"},
                "backend": {
                    "url": "http://127.0.0.1:1",
                    "client_id": "a",
                    "client_secret_file": str(secret),
                    "issuer": "i",
                },
            },
        )
    assert "s3cret" not in str(info.value)


# --- secret files that are not what they seem ------------------------------------------------


def with_secret_at(tmp_path: Path, where: str) -> Path:
    return write(
        tmp_path, BASE.replace('client_secret_file = "secret"', f'client_secret_file = "{where}"')
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda d: (d / "plain").write_text("x") and "plain/secret",
            "cannot be read (Not a directory)",
        ),
        (
            lambda d: (d / "a").symlink_to(d / "b") or (d / "b").symlink_to(d / "a") or "a/secret",
            "cannot be read (Too many levels of symbolic links)",
        ),
        (lambda d: "n" * 5000, "cannot be read (File name too long)"),
        (lambda d: (d / "dangling").symlink_to(d / "gone") or "dangling", "is a symlink"),
        (lambda d: "/dev/zero", "not a regular file"),
    ],
    ids=["parent-is-a-file", "symlink-loop", "name-too-long", "dangling-symlink", "dev-zero"],
)
def test_odd_secret_paths_are_problems_not_tracebacks(
    tmp_path: Path, make: Any, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = with_secret_at(tmp_path, make(tmp_path))
    assert any(message in p for p in problems(path)), problems(path)
    # `config check` takes a secret that is not there yet as a warning; never a traceback.
    assert main(["config", "check", str(path)]) in (0, 2)
    assert "Traceback" not in capsys.readouterr().err


def test_fifo_secret_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "secret", 0o600)
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(problems(write(tmp_path, BASE))))
    worker.start()
    worker.join(5.0)  # opening a FIFO for reading would wait for a writer forever
    assert not worker.is_alive(), "reading the secret blocked on a FIFO"
    assert any("not a regular file" in p for p in result[0]), result  # type: ignore[attr-defined]


def test_oversized_and_binary_secrets(tmp_path: Path, secret: Path) -> None:
    secret.write_bytes(b"x" * 5_000_000)
    assert any("over 4096 bytes" in p for p in problems(write(tmp_path, BASE)))
    secret.write_bytes(b"\xff\xfe secret")
    assert any("cannot be read" in p for p in problems(write(tmp_path, BASE)))
    secret.write_text(" \n\t\n")
    assert any("file is empty" in p for p in problems(write(tmp_path, BASE)))


def test_secret_owned_by_someone_else_is_still_read_by_root_but_not_world_readable(
    tmp_path: Path, secret: Path
) -> None:
    # Ownership is not checked (root may own it); the mode rule still applies.
    os.chown(secret, 65534, 65534)
    assert load_config(write(tmp_path, BASE)).client_secret.reveal() == "s3cret-value"
    secret.chmod(0o604)
    assert any("chmod 600" in p for p in problems(write(tmp_path, BASE)))


# --- keys and checks across keys ---------------------------------------------------------------


def test_new_keys_have_their_defaults(tmp_path: Path, secret: Path) -> None:
    cfg = load_config(write(tmp_path, BASE))
    assert cfg.backend.scan_budget == 3.0
    assert cfg.scanner.sources == ("serial",)
    assert cfg.scanner.source == "serial"
    assert cfg.offline.max_conflicts_per_day == 3
    assert (cfg.journal.quarantine_after, cfg.journal.quarantine_retry) == (20, 3600.0)
    assert (cfg.counter.cancel, cfg.counter.pin_hash, cfg.counter.amount_check) == (
        "pin",
        "",
        "warn",
    )
    assert cfg.metrics.textfile == "/var/lib/prometheus/node-exporter/kiosk.prom"
    assert cfg.metrics.interval == 15.0


def test_scanner_source_takes_one_or_a_list(tmp_path: Path, secret: Path) -> None:
    cfg = load_config(write(tmp_path, BASE + '[scanner]\nsource = ["camera", "serial"]\n'))
    assert cfg.scanner.sources == ("camera", "serial")
    assert cfg.scanner.source == "camera"  # the first one is the primary source
    assert cfg.public_dict()["scanner"]["source"] == ["camera", "serial"]
    cfg = load_config(write(tmp_path, BASE + '[scanner]\nsource = "hid"\n'))
    assert cfg.scanner.sources == ("hid",)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            '[scanner]\nsource = ["camera", "serial", "camera"]\n',
            "scanner.source: lists 'camera' more than once",
        ),
        ("[scanner]\nsource = []\n", "scanner.source: needs at least 1 item"),
        ('[scanner]\nsource = ["camera", "usb"]\n', "scanner.source: list item 'usb': must be"),
        ('[scanner]\nsources = ["camera"]\n', "scanner.sources: unknown key (did you mean"),
        ("[backend]\nscan_budget = 0\n", "backend.scan_budget: must be at least 0.1"),
        ("[offline]\nmax_conflicts_per_day = 0\n", "offline.max_conflicts_per_day: must be at"),
        ("[journal]\nquarantine_after = 0\n", "journal.quarantine_after: must be at least 1"),
        ("[journal]\nquarantine_retry = 0.5\n", "journal.quarantine_retry: must be at least"),
        ('[counter]\ncancel = "staff"\n', "counter.cancel: must be one of pin, off, open"),
        ('[counter]\namount_check = "block"\n', "counter.amount_check: must be one of warn"),
        ('[counter]\npin_hash = "1234"\n', "counter.pin_hash: not a PIN hash; make one with"),
        ('[counter]\ncancle = "pin"\n', "counter.cancle: unknown key (did you mean 'cancel'?)"),
        ("[metrics]\ninterval = 0\n", "metrics.interval: must be at least 0.1"),
        ('[metrics]\ntextfile = "kiosk.prom"\n', "metrics.textfile: must be an absolute path"),
        ('[metrics]\ntextfile = "/tmp/kiosk.txt"\n', "metrics.textfile: node-exporter reads"),
        ("[metric]\n", "metric: unknown section (did you mean 'metrics'?)"),
    ],
)
def test_each_bad_new_value_has_its_own_message(
    tmp_path: Path, secret: Path, extra: str, message: str
) -> None:
    text = BASE + extra
    if extra.startswith("[backend]"):  # keys added to the existing [backend] table
        text = BASE + extra.removeprefix("[backend]\n")
    found = problems(write(tmp_path, text))
    assert any(message in p for p in found), found


def test_scan_budget_cannot_exceed_the_read_timeout(tmp_path: Path, secret: Path) -> None:
    # Left out, it is the read timeout where that is shorter than 3 s: older files stay valid.
    cfg = load_config(write(tmp_path, BASE + "read_timeout = 2.0\n"))
    assert cfg.backend.scan_budget == 2.0
    found = problems(write(tmp_path, BASE + "read_timeout = 2.0\nscan_budget = 3.0\n"))
    assert any(
        "backend.scan_budget: 3.0 s is more than backend.read_timeout (2.0 s)" in p for p in found
    ), found
    cfg = load_config(write(tmp_path, BASE + "read_timeout = 2.0\nscan_budget = 1.5\n"))
    assert cfg.backend.scan_budget == 1.5


def test_rgb_led_needs_three_pins_and_pins_are_not_shared(tmp_path: Path, secret: Path) -> None:
    text = BASE + (
        "[signals]\nrgb_pins = [17, 27]\nbuzzer_pin = 18\nbutton_up = 18\n"
        "button_down = 6\nbutton_ok = 6\n[display]\nlanguage = 'de'\n"
    )
    found = problems(write(tmp_path, text))
    assert len(found) == 4, found  # reported together with the other problems
    assert any("signals.rgb_pins: an RGB LED has exactly 3 pins" in p for p in found)
    assert any("signals: GPIO 18 is given to buzzer_pin and button_up" in p for p in found)
    assert any("signals: GPIO 6 is given to button_down and button_ok" in p for p in found)
    assert any("display.language" in p for p in found)


def test_pin_shared_between_rgb_led_and_a_button(tmp_path: Path, secret: Path) -> None:
    text = BASE + "[signals]\nrgb_pins = [17, 27, 22]\nbutton_ok = 22\n"
    found = problems(write(tmp_path, text))
    assert any("GPIO 22 is given to rgb_pins[2] and button_ok" in p for p in found), found
    # led_pin is unused when rgb_pins is set, so the same number there takes no pin.
    text = BASE + "[signals]\nrgb_pins = [17, 27, 22]\nled_pin = 17\nbutton_ok = 13\n"
    assert load_config(write(tmp_path, text)).signals.rgb_pins == (17, 27, 22)


def test_wiring_of_the_install_guide_is_accepted(tmp_path: Path, secret: Path) -> None:
    text = BASE + "[signals]\nled_pin = 17\nbuzzer_pin = 18\nbutton_up = 5\n"
    text += "button_down = 6\nbutton_ok = 13\n"
    assert load_config(write(tmp_path, text)).signals.button_ok == 13


def test_cancel_by_pin_without_a_hash_is_a_warning(
    tmp_path: Path, secret: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = load_config(write(tmp_path, BASE))
    assert any("counter.cancel" in w and "kiosk config pin-hash" in w for w in cfg.warnings)
    assert main(["config", "check", str(tmp_path / "kiosk.toml")]) == 0
    assert 'warning: counter.cancel: "pin" without counter.pin_hash' in capsys.readouterr().err
    cfg = load_config(write(tmp_path, BASE + '[counter]\ncancel = "off"\n'))
    assert cfg.warnings == ()


def test_pin_hash_is_masked(tmp_path: Path, secret: Path) -> None:
    from kiosk.staff_pin import hash_pin

    pin_hash = hash_pin("2468")
    cfg = load_config(write(tmp_path, BASE + f'[counter]\npin_hash = "{pin_hash}"\n'))
    assert cfg.counter.pin_hash == pin_hash
    assert cfg.warnings == ()
    assert pin_hash not in repr(cfg)
    assert cfg.public_dict()["counter"]["pin_hash"] == MASK


def test_pin_hash_command_reads_stdin_and_prints_a_usable_hash(
    tmp_path: Path,
    secret: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kiosk.staff_pin import verify_pin

    monkeypatch.setattr("sys.stdin", io.StringIO("0852\n"))
    assert main(["config", "pin-hash"]) == 0
    out, err = capsys.readouterr()
    pin_hash = out.strip()
    assert "0852" not in out + err
    assert verify_pin("0852", pin_hash)
    cfg = load_config(write(tmp_path, BASE + f'[counter]\npin_hash = "{pin_hash}"\n'))
    assert cfg.counter.pin_hash == pin_hash


@pytest.mark.parametrize("typed", ["12a4\n", "123\n", "\n", ""])
def test_pin_hash_command_refuses_a_pin_that_is_not_4_to_8_digits(
    typed: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(typed))
    assert main(["config", "pin-hash"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "PIN refused: a staff PIN is 4 to 8 digits" in err


def _talk(fd: int, until: bytes, seconds: float = 20.0) -> bytes:
    """Read a pty until *until* has appeared (or the child closed it)."""
    seen = b""
    deadline = time.monotonic() + seconds
    while until not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


@pytest.mark.parametrize(("second", "status"), [("2468", 0), ("2469", 2)])
def test_pin_hash_command_on_a_terminal_asks_twice_without_echo(second: str, status: int) -> None:
    from kiosk.staff_pin import verify_pin

    pid, fd = pty.fork()
    if pid == 0:  # the child: `kiosk config pin-hash` with the pty as its terminal
        try:
            os.execv(sys.executable, [sys.executable, "-m", "kiosk", "config", "pin-hash"])
        finally:
            os._exit(127)  # never back into the test runner
    try:
        screen = _talk(fd, b"Staff PIN")
        os.write(fd, b"2468\n")
        screen += _talk(fd, b"again")
        os.write(fd, second.encode() + b"\n")
        screen += _talk(fd, b"\x00")  # everything up to the end
    finally:
        _, wait_status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(wait_status) == status, screen
    text = screen.decode()
    assert "2468" not in text and "2469" not in text  # never echoed
    if status == 0:
        (pin_hash,) = [w for w in text.split() if w.startswith("$scrypt$")]
        assert verify_pin("2468", pin_hash)
    else:
        assert "the two PINs differ" in text and "$scrypt$" not in text
