"""Fleet checks of the device test (issue 15): metrics, journal upload, Ansible waves.

The device test boots the flashed image in QEMU and calls these with the VM's SSH
target and the host-side addresses it forwards (see README.fleet.md). Every check runs
the real component: node_exporter's page parsed by prometheus_client's parser,
``systemd-journal-remote`` on the host read back with ``journalctl --directory``, the
playbooks run by ``ansible-playbook``.

- :class:`SshTarget` runs a command on the VM (``ssh -i KEY -p PORT USER@HOST``).
- :func:`check_metrics` scrapes a metrics URL until the ``kiosk_*`` families agree with
  ``kiosk status --json`` (:func:`ssh_status` on the VM), or raises AssertionError.
- :func:`make_log_pki` writes a CA, a server certificate for the host-side receiver and
  a client certificate for the kiosk (flash.sh ``--log-ca/--log-cert/--log-key``).
- :class:`JournalReceiver` runs ``systemd-journal-remote`` on the host, owned by a
  ``with`` block; :meth:`JournalReceiver.wait_for_entry` finds an entry by its fields.
- :func:`fleet_inventory`, :func:`run_playbook`, :func:`update_wave_problems`: the fleet
  playbooks against the VM plus a second host whose update is made to fail.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "fleet"
BIN = Path(sys.executable).parent
JOURNAL_REMOTE = next(
    (p for p in ("/usr/lib/systemd/systemd-journal-remote", "/lib/systemd/systemd-journal-remote")
     if Path(p).exists()),
    "/usr/lib/systemd/systemd-journal-remote",
)  # fmt: skip

# Metric families (names as the parser gives them: counters without _total).
KIOSK_FAMILIES = (
    "kiosk_scans", "kiosk_journal_pending", "kiosk_journal_quarantined",
    "kiosk_journal_oldest_pending_timestamp_seconds", "kiosk_last_sync_timestamp_seconds",
    "kiosk_offline_exposure_cents", "kiosk_offline_checks", "kiosk_offline_conflicts",
    "kiosk_backend_up", "kiosk_clock_synced", "kiosk_scan_result_seconds",
    "kiosk_decode_seconds", "kiosk_journal_bytes", "kiosk_build_info",
)  # fmt: skip


# Gauges the kiosk leaves out when there is no value (e.g. nothing waits for upload).
ABSENT_WHEN_NONE = (
    "kiosk_journal_oldest_pending_timestamp_seconds",
    "kiosk_last_sync_timestamp_seconds",
)


# --- SSH ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SshTarget:
    host: str
    port: int
    user: str
    key: Path

    def options(self) -> list[str]:
        return ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
                "-o", "LogLevel=ERROR"]  # fmt: skip

    def argv(self, command: str) -> list[str]:
        return ["ssh", "-i", str(self.key), "-p", str(self.port), *self.options(),
                f"{self.user}@{self.host}", command]  # fmt: skip

    def run(self, command: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(command),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def ssh_status(target: SshTarget, kiosk: str = "/usr/local/bin/kiosk") -> Callable[[], Any]:
    """``kiosk status --json`` on the VM, as the kiosk user (who may read the journal)."""

    def status() -> Any:
        result = target.run(f"sudo -n -u kiosk {shlex.quote(kiosk)} status --json")
        assert result.returncode == 0, f"kiosk status on the VM failed: {result.stderr}"
        return json.loads(result.stdout)

    return status


# --- (a) metrics through node_exporter ----------------------------------------------------


def scrape(url: str, timeout: float = 10.0) -> dict[str, dict[tuple[Any, ...], float]]:
    """One plain HTTP GET of *url*, parsed: {family: {(sample name, labels...): value}}."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        text = response.read().decode("utf-8")
    families: dict[str, dict[tuple[Any, ...], float]] = {}
    for family in text_string_to_metric_families(text):
        samples = families.setdefault(family.name, {})
        for s in family.samples:
            samples[(s.name, *sorted(s.labels.items()))] = s.value
    return families


def _epoch(text: str | None) -> float | None:
    return (
        None if text is None else dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    )


def metrics_problems(
    families: Mapping[str, Mapping[tuple[Any, ...], float]], status: Any
) -> list[str]:
    """How the scraped kiosk families disagree with a ``kiosk status --json`` document."""
    problems = [
        f"missing family {name}"
        for name in KIOSK_FAMILIES
        if name not in families and name not in ABSENT_WHEN_NONE
    ]
    if problems:
        return problems

    def one(name: str) -> float | None:
        return families.get(name, {}).get((name,))

    pairs = [
        ("kiosk_journal_pending", status["pending"]),
        ("kiosk_journal_quarantined", status["quarantined"]),
        ("kiosk_offline_exposure_cents", status["offline_exposure_cents"]),
        ("kiosk_offline_checks", status["offline_count"]),
        ("kiosk_clock_synced", int(status["clock_synced"])),
    ]
    problems += [f"{n} is {one(n)}, status says {want}" for n, want in pairs if one(n) != want]
    for name, key in (("kiosk_journal_oldest_pending_timestamp_seconds", "oldest_pending"),
                      ("kiosk_last_sync_timestamp_seconds", "last_sync")):  # fmt: skip
        got, want = one(name), _epoch(status[key])
        if (got is None) != (want is None) or (got is not None and abs(got - (want or 0)) > 1.0):
            problems.append(f"{name} is {got}, status says {status[key]}")
    if (
        families["kiosk_offline_conflicts"].get(("kiosk_offline_conflicts_total",))
        != status["conflicts_24h"]
    ):
        problems.append("kiosk_offline_conflicts_total differs from conflicts_24h")
    build = ("kiosk_build_info", ("version", status["version"]))
    if families["kiosk_build_info"].get(build) != 1:
        problems.append(f"kiosk_build_info has no version {status['version']}")
    return problems


def check_metrics(
    url: str, status: Callable[[], Any], *, timeout: float = 90.0, poll: float = 3.0
) -> dict[str, dict[tuple[Any, ...], float]]:
    """Scrape *url* until its kiosk families match *status()* (the file is rewritten every
    ``[metrics] interval``); returns the families. Raises AssertionError after *timeout*."""
    deadline = time.monotonic() + timeout
    problems: list[str] = ["never scraped"]
    while time.monotonic() < deadline:
        try:
            families = scrape(url)
        except OSError as exc:
            problems = [f"GET {url}: {exc}"]
        else:
            problems = metrics_problems(families, status())
            if not problems:
                return families
        time.sleep(poll)
    raise AssertionError(f"metrics at {url} do not match kiosk status: {problems}")


# --- (b) journal upload to a systemd-journal-remote on the host --------------------------


@dataclass(frozen=True)
class LogPki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_log_pki(folder: Path, server_names: list[str], client: str = "counter-1") -> LogPki:
    """A CA, a server certificate for *server_names* (IP addresses or DNS names the
    uploader connects to, e.g. QEMU's 10.0.2.2) and a client certificate; keys 0600."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
        path.touch(mode=0o600)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)

    def issue(name: str, key: Any, issuer: Any, issuer_key: Any, extensions: list[Any]) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
        )
        for ext, critical in extensions:
            builder = builder.add_extension(ext, critical=critical)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kiosk test log CA")])
    ca = issue("kiosk test log CA", ca_key, ca_name, ca_key,
               [(x509.BasicConstraints(ca=True, path_length=None), True)])  # fmt: skip
    sans: list[x509.GeneralName] = []
    for name in server_names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = issue(server_names[0], server_key, ca_name, ca_key, [
        (x509.SubjectAlternativeName(sans), False),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)])  # fmt: skip
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = issue(client, client_key, ca_name, ca_key, [
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)])  # fmt: skip
    pki = LogPki(folder / "ca.crt", folder / "server.crt", folder / "server.key",
                 folder / "client.crt", folder / "client.key")  # fmt: skip
    for path, cert in ((pki.ca, ca), (pki.server_cert, server), (pki.client_cert, client_cert)):
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_key(pki.server_key, server_key)
    write_key(pki.client_key, client_key)
    return pki


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class JournalReceiver:
    """``systemd-journal-remote`` on the host, writing into its own folder; use ``with``.

    With *pki* it listens for HTTPS with the server certificate (the uploader checks it
    against ``--log-ca``); without, plain HTTP. Debian's build cannot check client
    certificates (``--trust`` is "not available"): it accepts any client.
    Needs root only for ports below 1024.
    """

    def __init__(self, listen_host: str = "127.0.0.1", port: int = 0, pki: LogPki | None = None,
                 output: Path | None = None) -> None:  # fmt: skip
        self.listen_host = listen_host
        self.port = port or free_port(listen_host)
        self.pki = pki
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.output = output
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> JournalReceiver:
        if self.output is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="journal-remote-")
            self.output = Path(self._tmp.name)
        address = f"{self.listen_host}:{self.port}"
        argv = [JOURNAL_REMOTE, f"--output={self.output}/", "--split-mode=host"]
        if self.pki is None:
            argv.append(f"--listen-http={address}")
        else:
            argv += [f"--listen-https={address}", f"--key={self.pki.server_key}",
                     f"--cert={self.pki.server_cert}"]  # fmt: skip
        self._log = (self.output / "receiver.log").open("wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self._wait_listening()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_listening(self, timeout: float = 15.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"systemd-journal-remote exited: {self.log_text()}")
            try:
                with socket.create_connection((self.listen_host, self.port), timeout=1.0):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"systemd-journal-remote not listening on port {self.port}")

    @property
    def url(self) -> str:
        return f"{'https' if self.pki else 'http'}://{self.listen_host}:{self.port}"

    def log_text(self) -> str:
        assert self.output is not None
        path = self.output / "receiver.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def entries(self, *matches: str) -> list[dict[str, Any]]:
        """Entries received so far, filtered by ``FIELD=VALUE`` *matches* (journalctl)."""
        argv = ["journalctl", f"--directory={self.output}", "--output=json", "--no-pager",
                *matches]  # fmt: skip
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    def wait_for_entry(
        self, field: str, value: str | None = None, *, timeout: float = 120.0
    ) -> dict[str, Any]:
        """The first entry with *field* (equal to *value* if given); AssertionError after
        *timeout*."""
        deadline = time.monotonic() + timeout
        while True:
            matches = [f"{field}={value}"] if value is not None else []
            found = [e for e in self.entries(*matches) if field in e]
            if found:
                return found[0]
            assert time.monotonic() < deadline, (
                f"no journal entry with {field} reached the receiver in {timeout:.0f} s; "
                f"receiver log: {self.log_text()[-2000:]}"
            )
            time.sleep(1.0)

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if getattr(self, "_log", None) is not None:
            self._log.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


# --- (c) Ansible: the VM plus a host whose update is made to fail ------------------------


def ssh_host_vars(target: SshTarget) -> dict[str, Any]:
    """Inventory variables of the VM: the technician user over SSH, sudo to root."""
    return {
        "ansible_host": target.host,
        "ansible_port": target.port,
        "ansible_user": target.user,
        "ansible_ssh_private_key_file": str(target.key),
        "ansible_ssh_common_args": " ".join(target.options()),
        "ansible_python_interpreter": "/usr/bin/python3",
    }


def fleet_inventory(path: Path, hosts: list[tuple[str, str, dict[str, Any]]]) -> Path:
    """An inventory of (group, host, vars) under ``kiosks``, in this order (the first host
    is the first wave)."""
    children: dict[str, Any] = {}
    for group, host, host_vars in hosts:
        children.setdefault(group, {"hosts": {}})["hosts"][host] = host_vars
    path.write_text(json.dumps({"all": {"children": {"kiosks": {"children": children}}}}, indent=1))
    return path


def run_playbook(
    playbook: str, inventory: Path, work: Path, limit: str | None = None, **extra_vars: Any
) -> subprocess.CompletedProcess[str]:
    """``ansible-playbook`` with fleet/ansible.cfg; Ansible's state kept under *work*."""
    home = work / "ansible-home"
    env = dict(os.environ, ANSIBLE_CONFIG=str(FLEET / "ansible.cfg"), ANSIBLE_HOME=str(home),
               ANSIBLE_LOCAL_TEMP=str(home / "tmp"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOST_KEY_CHECKING="False", PATH=f"{BIN}:{os.environ['PATH']}")  # fmt: skip
    vars_file = work / f"{Path(playbook).stem}-vars.json"
    vars_file.write_text(json.dumps(extra_vars))
    argv = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(FLEET / playbook),
            "-e", f"@{vars_file}", *(["--limit", limit] if limit else [])]  # fmt: skip
    # Ansible refuses a non-blocking stdin (QEMU or ssh may leave the inherited one so).
    return subprocess.run(
        argv, cwd=FLEET, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=1200,
    )  # fmt: skip


def update_wave_problems(
    result: subprocess.CompletedProcess[str], *, updated: Mapping[str, str],
    failing: str, failing_release: str, old_release: str, new_release: str,
) -> list[str]:  # fmt: skip
    """What is wrong with an update.yml run that should stop at *failing*: *updated* maps
    each host of the earlier waves to the release it runs now (read after the run)."""
    problems = []
    if result.returncode == 0:
        problems.append("update.yml succeeded although a host's update failed")
    for host, release in updated.items():
        if release != new_release:
            problems.append(f"{host} runs {release}, not {new_release}")
    if failing_release != old_release:
        problems.append(f"{failing} runs {failing_release}, not its old {old_release}")
    if f"ROLLOUT STOPPED at {failing}" not in result.stdout:
        problems.append(f"no 'ROLLOUT STOPPED at {failing}' in the output")
    return problems
