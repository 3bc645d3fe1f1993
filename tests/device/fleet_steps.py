"""The fleet steps of the device test (issue 15), run on the booted VM.

- :func:`start_receiver`: before flashing, a ``systemd-journal-remote`` on the host
  (HTTPS, a test CA) and the flash.sh options that point the card at it and at
  node_exporter.
- :func:`watch`: node_exporter in the guest serves the kiosk's metrics (one plain HTTP
  GET through QEMU's forward, parsed by prometheus_client's parser, equal to ``kiosk
  status --json``), listening on the LAN address only; a journal entry with ``KIOSK_TX``
  of a scanned receipt reaches the host's ``systemd-journal-remote``.
- :func:`ansible`: ``fleet/update.yml`` rolls a wheelhouse release out to the VM and then
  to a second host whose update fails (a local kiosk root made by the real
  update-remote.sh, tests/fleet/fleet_hosts.py): the rollout stops there and that host
  stays on its old release. ``config.yml`` pushes a changed kiosk.toml to the VM and
  refuses a broken one; ``status.yml`` reads the VM into its table.

Every check prints one PASS/FAIL line through the device test's Report.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "fleet"))

from fleet_checks import (  # noqa: E402
    JournalReceiver,
    SshTarget,
    check_metrics,
    fleet_inventory,
    make_log_pki,
    run_playbook,
    ssh_host_vars,
    ssh_status,
    update_wave_problems,
)
from vm import BOOT_OFFSET, LOG_IP, LOG_PORT, METRICS_PORT  # noqa: E402

if TYPE_CHECKING:
    from run import DeviceTest

GUEST_LAN = "10.0.2.15"  # QEMU user networking's address for the guest
FLEET_RELEASE = "0.2.0"


def start_receiver(work: Path) -> tuple[JournalReceiver, list[str]]:
    """The host's journal receiver (started) and the flash.sh options for the fleet."""
    pki = make_log_pki(work / "log-pki", [LOG_IP], client="counter-vm")
    receiver = JournalReceiver("127.0.0.1", pki=pki, output=work / "journal-remote")
    receiver.output.mkdir()  # type: ignore[union-attr]
    receiver.__enter__()
    # QEMU's restricted user network hands out no gateway, so the default (the address
    # of the default route's interface) cannot be found here: the address is given.
    options = [
        "--metrics",
        "--metrics-listen", f"{GUEST_LAN}:{METRICS_PORT}",
        "--log-server", f"https://{LOG_IP}:{LOG_PORT}",
        "--log-ca", str(pki.ca),
        "--log-cert", str(pki.client_cert),
        "--log-key", str(pki.client_key),
    ]  # fmt: skip
    return receiver, options


def target(t: DeviceTest) -> SshTarget:
    return SshTarget("127.0.0.1", t.vm.ssh_port, "tech", t.vm.key)


def watch(t: DeviceTest, receiver: JournalReceiver) -> None:
    vm, r = t.vm, t.r
    url = f"http://127.0.0.1:{vm.metrics_port}/metrics"
    started = time.monotonic()
    try:
        families = check_metrics(url, ssh_status(target(t)), timeout=150)
    except AssertionError as exc:
        r.line(False, "node_exporter serves the kiosk metrics, equal to kiosk status --json",
               str(exc)[-1500:])  # fmt: skip
    else:
        scans = {k[-1][1]: v for k, v in families["kiosk_scans"].items()
                 if k[0] == "kiosk_scans_total"}  # fmt: skip
        r.line(True, "node_exporter serves the kiosk metrics, equal to kiosk status --json",
               f"GET {url} after {time.monotonic() - started:.0f}s; "
               f"kiosk_scans_total {scans}")  # fmt: skip
    listening = vm.ssh(f"ss -Hltn 'sport = :{METRICS_PORT}'").stdout.split()
    local = [w for w in listening if w.endswith(f":{METRICS_PORT}")]
    r.line(
        local == [f"{GUEST_LAN}:{METRICS_PORT}"],
        "node_exporter listens on the LAN address only",
        f"listening sockets: {local}",
    )
    certs = vm.ssh("sudo sh -c \"stat -c '%a %U %n' /etc/kiosk/log/*\"").stdout.split("\n")
    certs = [line for line in certs if line]
    boot = vm.ssh("sudo find /boot/firmware -name '*.key' -o -name 'client.crt' -o -name log")
    left = boot.stdout.split()
    # The key's bytes, not only its name, must be gone from the FAT partition.
    key = (t.work / "log-pki" / "client.key").read_text().splitlines()
    body = [line.encode() for line in key if not line.startswith("-----") and len(line) >= 32]
    vm.ssh("sync")
    with vm.card.open("rb") as f:
        f.seek(BOOT_OFFSET)
        fat = f.read(256 * 1024 * 1024)
    in_fat = [part for part in body if part in fat]
    r.line(
        len(certs) == 3
        and all(line.startswith("600 root ") for line in certs)
        and not left
        and not in_fat,
        "log certificates 0600 under /etc/kiosk/log, gone from the boot partition (files and key "
        "bytes)",
        " | ".join(certs)
        + (f"; left on the boot partition: {left}" if left else "")
        + (f"; key bytes still in the FAT: {in_fat}" if in_fat else ""),
    )
    tx, _token = t.backend.mint_receipt(3900)
    vm.scan(_token)
    t.backend.checked({tx}, timeout=90)
    started = time.monotonic()
    try:
        entry = receiver.wait_for_entry("KIOSK_TX", tx, timeout=150)
    except AssertionError as exc:
        status = vm.ssh("systemctl status systemd-journal-upload --no-pager -n 15").stdout
        r.line(False, "a KIOSK_TX journal entry reaches systemd-journal-remote on the host",
               f"{str(exc)[-800:]} | guest: {status[-1200:]}")  # fmt: skip
        return
    fields = {k: entry.get(k) for k in ("KIOSK_OUTCOME", "KIOSK_DEVICE", "KIOSK_VENUE",
                                        "_HOSTNAME", "_SYSTEMD_UNIT")}  # fmt: skip
    secret_seen = any(t.secret in str(v) for v in entry.values())
    r.line(
        fields["KIOSK_OUTCOME"] == "checked"
        and fields["KIOSK_DEVICE"] == "counter-vm"
        and fields["_SYSTEMD_UNIT"] == "kiosk.service"
        and not secret_seen,
        "a KIOSK_TX journal entry reaches systemd-journal-remote on the host (HTTPS)",
        f"{time.monotonic() - started:.0f}s after the scan was checked; {fields}",
    )


def ansible(t: DeviceTest, new_wheelhouse: Path) -> None:
    from fleet_hosts import install_kiosks, write_inventory

    vm, r, work = t.vm, t.r, t.work
    fake = install_kiosks(work, ["failing"])["failing"]
    fake.mark("broken", FLEET_RELEASE)
    local = json.loads(write_inventory(work / "local.json", {"x": {"failing": fake}}).read_text())
    failing_vars = local["all"]["children"]["kiosks"]["children"]["x"]["hosts"]["failing"]
    inventory = fleet_inventory(
        work / "inventory.json",
        [("helsinki_vm", "counter-vm", ssh_host_vars(target(t))),
         ("helsinki_failing", "failing", failing_vars)],
    )  # fmt: skip
    before = t.current()
    started = time.monotonic()
    res = run_playbook(
        "update.yml", inventory, work,
        kiosk_wheelhouse=str(new_wheelhouse), kiosk_settle_s=5, kiosk_ready_timeout_s=180,
    )  # fmt: skip
    t.r.times["ansible_update"] = time.monotonic() - started
    now = t.current()
    problems = update_wave_problems(
        res,
        updated={"counter-vm": now},
        failing="failing",
        failing_release=fake.current(),
        old_release="0.1.0",
        new_release=FLEET_RELEASE,
    )
    if not vm.wait_active(10):
        problems.append("kiosk.service not active on the VM after the rollout")
    summary = [line.strip() for line in res.stdout.splitlines() if "ROLLOUT" in line]
    r.line(
        not problems,
        "ansible update.yml: the VM is updated, the failing second host stops the rollout "
        "and stays on its old release",
        f"{t.r.times['ansible_update']:.0f}s; VM {before} -> {now}, failing host on "
        f"{fake.current()}; {summary[:2]}"
        if not problems
        else f"{problems}; {res.stdout[-2500:]} {res.stderr[-800:]}",
    )
    t.check_receipts("scanning works on the release Ansible rolled out", [2100])
    config(t, inventory)
    status(t, inventory)


def config(t: DeviceTest, inventory: Path) -> None:
    vm, r, work = t.vm, t.r, t.work
    base = (work / "kiosk.toml").read_text()
    changed = work / "kiosk-changed.toml"
    changed.write_text(base + "\n[metrics]\ninterval = 10\n")
    pid = vm.unit("MainPID")["MainPID"]
    res = run_playbook("config.yml", inventory, work, limit="counter-vm",
                       kiosk_config_src=str(changed), kiosk_settle_s=5,
                       kiosk_ready_timeout_s=180)  # fmt: skip
    installed = vm.ssh("sudo cat /etc/kiosk/kiosk.toml").stdout
    after = vm.unit("MainPID", "ActiveState")
    r.line(
        res.returncode == 0
        and installed == changed.read_text()
        and after["ActiveState"] == "active"
        and after["MainPID"] != pid,
        "ansible config.yml installs a checked kiosk.toml and the kiosk restarts on it",
        f"MainPID {pid} -> {after}" if res.returncode == 0 else res.stdout[-2500:],
    )
    broken = work / "kiosk-broken.toml"
    broken.write_text(base + '\n[metrics]\ninterval = "often"\nflavour = 1\n')
    pid = after["MainPID"]
    res = run_playbook("config.yml", inventory, work, limit="counter-vm",
                       kiosk_config_src=str(broken))  # fmt: skip
    kept = vm.ssh("sudo cat /etc/kiosk/kiosk.toml; ls /etc/kiosk").stdout
    after = vm.unit("MainPID", "ActiveState")
    r.line(
        res.returncode != 0
        and "rejected by kiosk config check" in res.stdout
        and kept.startswith(changed.read_text())
        and "kiosk.toml.new" not in kept
        and after == {"MainPID": pid, "ActiveState": "active"},
        "ansible config.yml refuses a kiosk.toml the kiosk rejects; nothing changes",
        f"exit {res.returncode}; {after}" if res.returncode != 0 else res.stdout[-2000:],
    )


def status(t: DeviceTest, inventory: Path) -> None:
    r, work = t.r, t.work
    table = work / "fleet-status.csv"
    res = run_playbook("status.yml", inventory, work, limit="counter-vm",
                       kiosk_status_csv=str(table))  # fmt: skip
    rows: list[dict[str, Any]] = list(csv.DictReader(table.open())) if table.exists() else []
    doc = t.kiosk_json("status --json")
    row = rows[0] if len(rows) == 1 else {}
    r.line(
        res.returncode == 0
        and row.get("host") == "counter-vm"
        and row.get("release") == t.current()
        and row.get("online") == str(doc["online"])
        and row.get("quarantined") == str(doc["quarantined"])
        and row.get("error") == ""
        and "1 kiosk(s): 1 online" in res.stdout,
        "ansible status.yml reads the VM into the fleet table (CSV and summary)",
        str(row) if res.returncode == 0 else res.stdout[-2000:],
    )
