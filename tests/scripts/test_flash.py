"""scripts/flash.sh on a Raspberry Pi OS-like image made here (MBR, FAT32 boot, ext4 root).

The result is read back with mtools. First boot (scripts/firstboot.sh) runs against
a root directory with fake systemctl/python3 (tests/scripts/fake_pi.py).
Block-device tests use loop devices and run only as root with losetup.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import shutil
import stat
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from fake_pi import FakePi, have_sysusers

ROOT = Path(__file__).resolve().parents[2]
FLASH = ROOT / "scripts" / "flash.sh"
BOOT_START = 8192  # sectors, as in Raspberry Pi OS images
BOOT_SECTORS = 131072  # 64 MiB
ROOT_START = BOOT_START + BOOT_SECTORS
IMAGE_MB = 100
OFFSET = BOOT_START * 512
PSK = "correct horse battery"
SECRET = "cs_live_4f1c2a9d7e"
ORIGINAL_CONFIG = (
    "# Raspberry Pi OS\ncamera_auto_detect=1\n#dtparam=i2c_arm=on\narm_64bit=1\n"
    "[pi4]\narm_boost=1\n"
)
ORIGINAL_CMDLINE = "console=serial0,115200 console=tty1 root=PARTUUID=abcd-02 rootwait\n"

for tool in ("mtype", "mcopy", "sfdisk", "mkfs.vfat", "mkfs.ext4", "ssh-keygen"):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is needed to build a test image", allow_module_level=True)

MT_ENV = dict(os.environ, MTOOLS_SKIP_CHECK="1")


SEED = ROOT / "tests/data/raspios-bootfs"
# What the boot partition of each kind of image holds besides config.txt and cmdline.txt.
BOOT_FILES = {
    # Raspberry Pi OS trixie (64-bit), 2025-11-24 and later: the stock NoCloud seed
    "trixie64": ["kernel8.img", "kernel_2712.img", "meta-data", "user-data", "network-config"],
    # bookworm (64-bit), and trixie before 2025-11-24: no seed on the boot partition
    "bookworm64": ["kernel8.img", "kernel_2712.img"],
    # trixie 32-bit (armhf): the 32-bit kernels beside kernel8.img
    "trixie32": ["kernel.img", "kernel7.img", "kernel8.img", "meta-data", "user-data",
                 "network-config"],
}  # fmt: skip


def make_image(path: Path, kind: str = "trixie64", config: str | None = ORIGINAL_CONFIG) -> None:
    """A small Raspberry Pi OS-like image of *kind* (BOOT_FILES); config=None: no config.txt."""
    with path.open("wb") as f:
        f.truncate(IMAGE_MB * 1024 * 1024)
    layout = (
        f"label: dos\nstart={BOOT_START}, size={BOOT_SECTORS}, type=c\n"
        f"start={ROOT_START}, type=83\n"
    )
    subprocess.run(["sfdisk", "-q", str(path)], input=layout, text=True, check=True)
    subprocess.run(
        ["mkfs.vfat", "-F", "32", "-n", "BOOTFS", "--offset", str(BOOT_START), str(path),
         str(BOOT_SECTORS // 2)],
        check=True, capture_output=True,
    )  # fmt: skip
    root_kib = (IMAGE_MB * 2048 - ROOT_START) // 2
    subprocess.run(
        ["mkfs.ext4", "-q", "-L", "rootfs", "-E", f"offset={ROOT_START * 512}", str(path),
         f"{root_kib}k"],
        check=True, capture_output=True,
    )  # fmt: skip
    src = path.parent / f"fat-src-{path.name}"
    src.mkdir(exist_ok=True)
    files = [src / "cmdline.txt"]
    (src / "cmdline.txt").write_text(ORIGINAL_CMDLINE)
    if config is not None:
        (src / "config.txt").write_text(config)
        files.append(src / "config.txt")
    for name in BOOT_FILES[kind]:
        seed = SEED / name
        (src / name).write_bytes(
            seed.read_bytes() if seed.exists() else b"\x7fkernel " + name.encode()
        )
        files.append(src / name)
    subprocess.run(
        ["mcopy", "-i", f"{path}@@{OFFSET}", *map(str, files), "::"], check=True, env=MT_ENV
    )


@dataclass
class Inputs:
    dir: Path
    image: Path
    image_xz: Path
    key: Path
    psk: Path
    secret: Path
    config: Path
    wheel: Path
    wheelhouse: Path

    def args(self, out: Path, **over: str | None) -> list[str]:
        opts: dict[str, str | None] = {
            "--image": str(self.image_xz),
            "--out": str(out),
            "--hostname": "counter-1",
            "--ssh-key": str(self.key),
            "--wifi-ssid": 'Studio "Lotus"',
            "--wifi-psk-file": str(self.psk),
            "--wifi-country": "fi",
            "--config": str(self.config),
            "--client-secret-file": str(self.secret),
            "--wheelhouse": str(self.wheelhouse),
        }
        opts.update(over)
        argv = [str(FLASH)]
        for key, value in opts.items():
            if value is not None:
                argv += [key, value]
        return argv


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    d = tmp_path_factory.mktemp("flash-in")
    image = d / "raspios.img"
    make_image(image)
    image_xz = d / "raspios.img.xz"
    image_xz.write_bytes(lzma.compress(image.read_bytes(), preset=0))
    key = d / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tech@laptop", "-f", str(key)],
        check=True,
    )
    psk = d / "psk"
    psk.write_text(PSK + "\n")
    psk.chmod(0o600)
    secret = d / "client_secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    config = d / "kiosk.toml"
    config.write_text(
        '[device]\nid = "counter-1"\nvenue = "ven_demo0000000000"\n'
        '[backend]\nurl = "https://api.example.invalid"\nclient_id = "kiosk-1"\n'
        'client_secret_file = "/etc/kiosk/client_secret"\nissuer = "https://api.example.invalid"\n'
    )
    wheel = d / "smartum_kiosk-0.2.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("kiosk/__init__.py", '__version__ = "0.2.0"\n')
    wheelhouse = make_wheelhouse(d / "wheels", wheel)
    return Inputs(d, image, image_xz, Path(f"{key}.pub"), psk, secret, config, wheel, wheelhouse)


def make_wheelhouse(dir: Path, wheel: Path) -> Path:
    """What scripts/wheelhouse.sh makes: the kiosk wheel, a dependency, requirements.lock."""
    dir.mkdir()
    shutil.copy(wheel, dir)
    dep = dir / "pyserial-3.5-py2.py3-none-any.whl"
    with zipfile.ZipFile(dep, "w") as z:
        z.writestr("serial/__init__.py", "")
    lines = [
        f"{name}=={version} --hash=sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}"
        for path, name, version in ((wheel, "smartum-kiosk", "0.2.0"), (dep, "pyserial", "3.5"))
    ]
    (dir / "requirements.lock").write_text("\n".join(lines) + "\n")
    return dir


def run(argv: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)


def mtype(image: Path | str, name: str) -> str:
    return mbytes(image, name).decode()


def mbytes(image: Path | str, name: str) -> bytes:
    argv = ["mtype", "-i", f"{image}@@{OFFSET}", f"::{name}"]
    return subprocess.run(argv, capture_output=True, env=MT_ENV, check=True, timeout=60).stdout


def mfiles(image: Path | str, folder: str = "") -> set[str]:
    out = run(["mdir", "-b", "-i", f"{image}@@{OFFSET}", f"::{folder}"], env=MT_ENV, check=True)
    return {line.rstrip("/").rsplit("/", 1)[-1] for line in out.stdout.split()}


def sha(path: Path, start: int = 0, length: int | None = None) -> str:
    with path.open("rb") as f:
        f.seek(start)
        return hashlib.sha256(f.read(length if length is not None else -1)).hexdigest()


@pytest.fixture(scope="module")
def flashed(inputs: Inputs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("flash-out") / "kiosk.img"
    before = sha(inputs.image_xz)
    result = run(inputs.args(out))
    assert result.returncode == 0, result.stderr
    assert sha(inputs.image_xz) == before  # the input is never modified
    yield out


def test_boot_partition_gets_the_cloud_init_files_and_the_kiosk_folder(flashed, inputs):
    assert {"user-data", "meta-data", "network-config", "config.txt", "cmdline.txt", "ssh",
            "kiosk"} <= mfiles(flashed)  # fmt: skip
    assert mfiles(flashed, "kiosk") == {
        "wheels",
        "kiosk.toml",
        "client_secret",
        "kiosk.service",
        "kiosk.sysusers",
        "firstboot.sh",
        "_firstboot_system.sh",
        "update-remote.sh",
        "kiosk-packages.sh",
        "010_tech-nopasswd",
    }
    assert mtype(flashed, "kiosk/kiosk.service") == (ROOT / "systemd/kiosk.service").read_text()
    assert mfiles(flashed, "kiosk/wheels") == {
        "smartum_kiosk-0.2.0-py3-none-any.whl",
        "pyserial-3.5-py2.py3-none-any.whl",
        "requirements.lock",
    }
    lock = (inputs.wheelhouse / "requirements.lock").read_text()
    assert mtype(flashed, "kiosk/wheels/requirements.lock") == lock


def test_user_data(flashed, inputs):
    text = mtype(flashed, "user-data")
    assert text.startswith("#cloud-config\n")
    data = yaml.safe_load(text)
    assert data["hostname"] == "counter-1"
    assert data["ssh_pwauth"] is False
    assert data["disable_root"] is True
    # One user, as Raspberry Pi Imager writes it: the image's default user, which
    # Raspberry Pi OS's cloud-init makes by renaming its UID-1000 account.
    assert "users" not in data
    user = data["user"]
    assert user["name"] == "tech"
    assert user["lock_passwd"] is True
    assert user["ssh_authorized_keys"] == [inputs.key.read_text().strip()]
    assert "passwd" not in user and "plain_text_passwd" not in user
    # apt is asked by firstboot.sh, only for what the system lacks: an unreachable
    # mirror must not end cloud-init in error.
    assert "packages" not in data and "package_update" not in data
    runcmd = data["runcmd"]
    install = runcmd.index(
        ["sh", "-c", "bash /boot/firmware/kiosk/firstboot.sh || echo \"firstboot.sh failed"
         " (exit $?): see above in this log\" >>/run/kiosk-firstboot.failed"]
    )  # fmt: skip
    # The secrets go even if firstboot.sh never ran.
    assert runcmd[install + 1] == [
        "rm",
        "-f",
        "/boot/firmware/kiosk/client_secret",
        "/boot/firmware/network-config",
    ]
    # A failed step ends cloud-init in error (runcmd's status is its last command's).
    assert runcmd[-1] == [
        "sh",
        "-c",
        "if [ -e /run/kiosk-firstboot.failed ]; then cat /run/kiosk-firstboot.failed >&2;"
        " exit 1; fi",
    ]
    meta = yaml.safe_load(mtype(flashed, "meta-data"))
    assert meta["instance-id"].startswith("kiosk-counter-1-")
    assert meta["local-hostname"] == "counter-1"
    assert meta["dsmode"] == "local"  # as the stock seed
    # As Raspberry Pi Imager: the datasource and this card's instance-id on the kernel
    # command line, once.
    cmdline = mtype(flashed, "cmdline.txt").split()
    assert cmdline[-1] == f"ds=nocloud;i={meta['instance-id']}"
    # Wi-Fi: the radio is unblocked before the network comes up.
    (unblock,) = data["bootcmd"]
    assert unblock[:2] == ["sh", "-c"] and "rfkill unblock wlan" in unblock[2]
    assert "nmcli radio wifi on" in unblock[2] and "/var/lib/systemd/rfkill/*:wlan" in unblock[2]


@pytest.mark.skipif(shutil.which("cloud-init") is None, reason="cloud-init is not installed")
def test_user_data_passes_cloud_init_schema(flashed, tmp_path):
    path = tmp_path / "user-data"
    path.write_text(mtype(flashed, "user-data"))
    result = run(["cloud-init", "schema", "--config-file", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout
    bad = tmp_path / "bad"
    bad.write_text(path.read_text().replace("lock_passwd: true", "lock_passwd: maybe"))
    assert run(["cloud-init", "schema", "--config-file", str(bad)]).returncode != 0


CLOUD_INIT_READS = """
import json, sys, yaml
from cloudinit import helpers
from cloudinit.distros import debian, ug_util
from cloudinit.sources.DataSourceNoCloud import parse_cmdline_data
# The image's default user, as Raspberry Pi OS's /etc/cloud/cloud.cfg names it.
default = {"name": "pi", "lock_passwd": True, "groups": ["adm", "dialout", "sudo", "gpio"],
           "sudo": ["ALL=(ALL) NOPASSWD:ALL"], "shell": "/bin/bash"}
distro = debian.Distro("debian", {"default_user": default}, helpers.Paths({}))
with open(sys.argv[1]) as f:
    users, _ = ug_util.normalize_users_groups(yaml.safe_load(f), distro)
meta = {}
found = parse_cmdline_data("ds=nocloud", meta, sys.argv[2])
print(json.dumps({"users": users, "found": found, "meta": meta}))
"""


@pytest.mark.skipif(shutil.which("cloud-init") is None, reason="cloud-init is not installed")
def test_cloud_init_makes_one_user_and_reads_the_instance_id_from_the_command_line(
    flashed, tmp_path
):
    """cloud-init's own code: the image's default user becomes tech (no second user),
    and ds=nocloud;i=... on cmdline.txt names meta-data's instance-id."""
    user_data = tmp_path / "user-data"
    user_data.write_text(mtype(flashed, "user-data"))
    python = Path(shutil.which("cloud-init") or "").read_text().splitlines()[0].removeprefix("#!")
    cmdline = mtype(flashed, "cmdline.txt").strip()
    result = run([python, "-c", CLOUD_INIT_READS, str(user_data), cmdline])
    assert result.returncode == 0, result.stderr
    read = json.loads(result.stdout)
    assert list(read["users"]) == ["tech"]
    tech = read["users"]["tech"]
    assert tech["default"] is True and tech["lock_passwd"] is True
    assert "sudo" in tech["groups"]
    meta = yaml.safe_load(mtype(flashed, "meta-data"))
    assert read["found"] is True and read["meta"] == {"instance-id": meta["instance-id"]}


def test_network_config_has_the_wifi_and_country(flashed):
    net = yaml.safe_load(mtype(flashed, "network-config"))["network"]
    assert net["version"] == 2
    wlan = net["wifis"]["wlan0"]
    assert wlan["dhcp4"] is True
    assert wlan["regulatory-domain"] == "FI"
    # The derived key (wpa_passphrase's), never the passphrase.
    key = hashlib.pbkdf2_hmac("sha1", PSK.encode(), b'Studio "Lotus"', 4096, 32).hex()
    assert wlan["access-points"] == {'Studio "Lotus"': {"password": key}}
    # Ethernet works too, also when the Wi-Fi is configured.
    assert net["ethernets"]["eth0"] == {"dhcp4": True, "optional": True}
    cmdline = mtype(flashed, "cmdline.txt")
    assert cmdline.startswith(
        ORIGINAL_CMDLINE.strip() + " cfg80211.ieee80211_regdom=FI ds=nocloud;"
    )


def test_every_scalar_keeps_its_type(inputs, tmp_path):
    """YAML 1.1 (PyYAML, cloud-init's parser) reads NO as false and 0123 as a number."""
    psk = tmp_path / "psk"
    psk.write_text("password\n")
    psk.chmod(0o600)
    out = tmp_path / "k.img"
    over = {"--hostname": "0123", "--wifi-country": "NO", "--wifi-ssid": "yes",
            "--wifi-psk-file": str(psk)}  # fmt: skip
    result = run(inputs.args(out, **over))
    assert result.returncode == 0, result.stderr
    net = yaml.safe_load(mtype(out, "network-config"))["network"]
    wlan = net["wifis"]["wlan0"]
    assert wlan["regulatory-domain"] == "NO"
    assert list(wlan["access-points"]) == ["yes"]
    user = yaml.safe_load(mtype(out, "user-data"))
    assert user["hostname"] == "0123"
    meta = yaml.safe_load(mtype(out, "meta-data"))
    assert meta["local-hostname"] == "0123"
    assert meta["instance-id"].startswith("kiosk-0123-")
    assert "cfg80211.ieee80211_regdom=NO" in mtype(out, "cmdline.txt").split()


def _scalars(node: yaml.Node) -> Iterator[yaml.ScalarNode]:
    if isinstance(node, yaml.ScalarNode):
        yield node
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _scalars(item)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _scalars(key)
            yield from _scalars(value)


def test_only_true_false_and_the_version_are_not_strings(flashed, inputs):
    """Every scalar of the seed: a value from the technician is double-quoted, and
    nothing but the booleans and network-config's version resolves to another type."""
    given = {"counter-1", "FI", 'Studio "Lotus"', inputs.key.read_text().strip(), "tech"}
    for name in ("user-data", "meta-data", "network-config"):
        root = yaml.compose(mtype(flashed, name))
        assert root is not None
        for node in _scalars(root):
            if node.value in given or node.value.startswith("kiosk-counter-1-"):
                assert node.style == '"', (name, node.value)
            tag = node.tag.rsplit(":", 1)[-1]
            assert tag == "str" or (tag, node.value) in {
                ("bool", "true"),
                ("bool", "false"),
                ("int", "2"),
            }, (name, node.value, tag)


def test_wifi_key_is_wpa_passphrase_s(inputs, tmp_path):
    """IEEE 802.11i-2004, H.4.3: passphrase "password", SSID "IEEE"."""
    psk = tmp_path / "psk"
    psk.write_text("password\n")
    psk.chmod(0o600)
    out = tmp_path / "k.img"
    result = run(inputs.args(out, **{"--wifi-ssid": "IEEE", "--wifi-psk-file": str(psk)}))
    assert result.returncode == 0, result.stderr
    aps = yaml.safe_load(mtype(out, "network-config"))["network"]["wifis"]["wlan0"]["access-points"]
    key = "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
    assert aps == {"IEEE": {"password": key}}
    # A file holding the 64-hex key already is taken as it is.
    psk.write_text(key.upper() + "\n")
    out2 = tmp_path / "k2.img"
    result = run(inputs.args(out2, **{"--wifi-ssid": "IEEE", "--wifi-psk-file": str(psk)}))
    assert result.returncode == 0, result.stderr
    assert mtype(out2, "network-config") == mtype(out, "network-config")


@pytest.mark.parametrize("lang", ["C", "C.UTF-8"])
def test_an_ssid_with_quotes_backslashes_and_non_ascii_letters(inputs, tmp_path, lang):
    ssid = 'Kahvila Ä \\ "2"'
    out = tmp_path / "k.img"
    env = dict(os.environ, LANG=lang, LC_ALL=lang)
    result = run(inputs.args(out, **{"--wifi-ssid": ssid}), env=env)
    assert result.returncode == 0, result.stderr
    aps = yaml.safe_load(mtype(out, "network-config"))["network"]["wifis"]["wlan0"]["access-points"]
    key = hashlib.pbkdf2_hmac("sha1", PSK.encode(), ssid.encode(), 4096, 32).hex()
    assert aps == {ssid: {"password": key}}


def test_flashing_again_without_wifi_leaves_no_wifi_key(flashed, inputs, tmp_path):
    again = tmp_path / "again.img"
    over = {"--image": str(flashed), "--wifi-ssid": None, "--wifi-psk-file": None,
            "--wifi-country": None}  # fmt: skip
    result = run(inputs.args(again, **over))
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(mtype(again, "network-config")) is None
    assert "cfg80211.ieee80211_regdom" not in mtype(again, "cmdline.txt")


def test_sudoers_drop_in_for_the_technician(flashed, tmp_path):
    text = mtype(flashed, "kiosk/010_tech-nopasswd")
    rules = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert rules == ["tech ALL=(ALL) NOPASSWD:ALL"]
    visudo = shutil.which("visudo") or "/usr/sbin/visudo"
    if not Path(visudo).exists():
        pytest.fail("visudo is needed to check the sudoers rule (apt-get install sudo)")
    path = tmp_path / "sudoers"
    path.write_text(text)
    assert run([visudo, "-cf", str(path)]).returncode == 0
    path.write_text(text.replace("NOPASSWD:ALL", "NOPASSWD ALL"))
    assert run([visudo, "-cf", str(path)]).returncode != 0


def test_uart_scanner(inputs, tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text(
        inputs.config.read_text() + '[scanner]\nsource = "serial"\nport = "/dev/serial0"\n'
    )
    out = tmp_path / "k.img"
    result = run([*inputs.args(out, **{"--config": str(config)}), "--uart-scanner"])
    assert result.returncode == 0, result.stderr
    # The serial console leaves GPIO14/15 to the scanner.
    words = mtype(out, "cmdline.txt").split()
    assert not [w for w in words if w.startswith("console=serial0")]
    assert "console=tty1" in words
    tail = mtype(out, "config.txt")[len(ORIGINAL_CONFIG) :]
    sections: dict[str, list[str]] = {}
    section = "all"
    for line in tail.splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line and not line.startswith("#"):
            sections.setdefault(section, []).append(line)
    assert "enable_uart=1" in sections["all"]
    for pi in ("pi3", "pi4", "pi02"):  # Bluetooth gives the PL011 back to GPIO14/15
        assert sections[pi] == ["dtoverlay=disable-bt"]
    assert sections["pi5"] == ["dtparam=uart0=on"]
    assert tail.rstrip().splitlines()[-2] == "[all]"  # what follows applies to every Pi
    # Without the option nothing of this is written.
    assert "enable_uart" not in mtype(flashed_plain(inputs, tmp_path), "config.txt")


def flashed_plain(inputs: Inputs, tmp_path: Path) -> Path:
    out = tmp_path / "plain.img"
    result = run(inputs.args(out, **{"--image": str(inputs.image)}))
    assert result.returncode == 0, result.stderr
    assert "console=serial0,115200" in mtype(out, "cmdline.txt").split()
    return out


def test_uart_scanner_needs_the_config_to_read_serial0(inputs, tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text(inputs.config.read_text() + '[scanner]\nsource = "hid"\n')
    result = run([*inputs.args(tmp_path / "k.img", **{"--config": str(config)}), "--uart-scanner"])
    assert result.returncode == 2
    assert '--uart-scanner needs [scanner] source = "serial"' in result.stderr
    assert 'port = "/dev/serial0"' in result.stderr


def test_the_kiosk_may_open_the_uart():
    """/dev/serial0 is ttyAMA0 (PL011) or ttyS0 (mini UART), group dialout."""
    unit = (ROOT / "systemd/kiosk.service").read_text().splitlines()
    groups = next(x for x in unit if x.startswith("SupplementaryGroups=")).split("=")[1].split()
    assert "dialout" in groups
    assert {"DeviceAllow=char-ttyAMA rw", "DeviceAllow=char-ttyS rw"} <= set(unit)
    assert "m kiosk dialout" in (ROOT / "systemd/kiosk.sysusers").read_text().splitlines()


def test_config_txt_enables_i2c_and_camera_after_the_original(flashed):
    text = mtype(flashed, "config.txt")
    assert text.startswith(ORIGINAL_CONFIG)
    tail = text[len(ORIGINAL_CONFIG) :].splitlines()
    assert tail[tail.index("[all]") :][1:4] == [
        "dtparam=i2c_arm=on",
        "dtparam=i2c_arm_baudrate=400000",
        "camera_auto_detect=1",
    ]


def test_secrets_appear_only_where_expected(flashed):
    names = [f for f in mfiles(flashed) if f != "kiosk"] + [
        f"kiosk/{f}" for f in mfiles(flashed, "kiosk")
    ]
    holding_secret = [n for n in names if SECRET.encode() in mbytes(flashed, n)]
    assert holding_secret == ["kiosk/client_secret"]  # deleted by first boot (below)
    # The Wi-Fi passphrase is nowhere on the card: not in a file, not in a freed cluster.
    assert PSK.encode() not in flashed.read_bytes()


def test_root_partition_is_untouched(flashed, inputs):
    start = ROOT_START * 512
    assert sha(flashed, start) == sha(inputs.image, start)


def test_flashing_an_already_flashed_image_keeps_one_kiosk_block(flashed, inputs, tmp_path):
    again = tmp_path / "again.img"
    result = run(inputs.args(again, **{"--image": str(flashed)}))
    assert result.returncode == 0, result.stderr
    lines = mtype(again, "config.txt").splitlines()
    assert lines.count("dtparam=i2c_arm=on") == 1
    assert lines.count("# >>> kiosk (scripts/flash.sh)") == 1
    assert mtype(again, "cmdline.txt").count("cfg80211.ieee80211_regdom=") == 1
    assert mtype(again, "cmdline.txt").count("ds=nocloud;i=") == 1


def test_without_wifi_there_is_no_network_config(inputs, tmp_path):
    out = tmp_path / "k.img"
    result = run(
        inputs.args(
            out, **{"--wifi-ssid": None, "--wifi-psk-file": None, "--wifi-country": None,
                    "--image": str(inputs.image)}
        )
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # A comment-only network-config, as the stock image's (and no earlier card's Wi-Fi):
    # NetworkManager's default brings up the Ethernet.
    assert yaml.safe_load(mtype(out, "network-config")) is None
    assert "bootcmd" not in yaml.safe_load(mtype(out, "user-data"))
    words = mtype(out, "cmdline.txt").split()
    assert words[:-1] == ORIGINAL_CMDLINE.split() and words[-1].startswith("ds=nocloud;i=kiosk-")


def test_dry_run_writes_nothing(inputs, tmp_path):
    out = tmp_path / "k.img"
    result = run([*inputs.args(out), "--dry-run"])
    assert result.returncode == 0, result.stderr
    assert "dry run: nothing written" in result.stderr
    assert "would decompress" in result.stderr
    assert "#cloud-config" in result.stderr
    assert SECRET not in result.stderr and PSK not in result.stderr
    assert list(tmp_path.iterdir()) == []


def _bad(inputs: Inputs, tmp: Path) -> list[tuple[dict[str, str | None], str]]:
    public = tmp / "open_secret"
    public.write_text("x\n")
    public.chmod(0o644)
    notkey = tmp / "notkey.pub"
    notkey.write_text("hello world\n")
    priv = Path(str(inputs.key).removesuffix(".pub"))
    exists = tmp / "exists.img"
    exists.write_text("")
    badtoml = tmp / "bad.toml"
    badtoml.write_text('[backend]\nclient_secret_file = "/home/me/secret"\n')
    return [
        ({"--image": None}, "--image is required"),
        ({"--image": str(tmp / "none.img")}, f"--image {tmp}/none.img: no such file"),
        ({"--out": None}, "give exactly one of --out FILE or --device /dev/sdX"),
        ({"--device": "/dev/sdz9"}, "give exactly one of --out FILE or --device /dev/sdX"),
        ({"--out": str(exists)}, "already exists; add --yes to overwrite it"),
        ({"--out": str(tmp / "no/dir/k.img")}, "does not exist"),
        ({"--hostname": None}, "--hostname is required"),
        ({"--hostname": "bad_name!"}, "--hostname bad_name!: use letters, digits and '-'"),
        ({"--ssh-key": None}, "--ssh-key is required: password login is disabled"),
        ({"--ssh-key": str(priv)}, "this is a private key; give the public one"),
        ({"--ssh-key": str(notkey)}, "not an OpenSSH public key"),
        ({"--wifi-psk-file": None}, "--wifi-psk-file is required with --wifi-ssid"),
        ({"--wifi-psk-file": str(public)}, "readable by others (mode 644); run: chmod 600"),
        ({"--wifi-country": "FIN"}, "--wifi-country FIN: two letters"),
        ({"--wifi-ssid": None}, "--wifi-ssid is required"),
        ({"--client-secret-file": str(public)}, "--client-secret-file"),
        ({"--client-secret-file": str(tmp / "nope")}, "no such file"),
        ({"--config": str(badtoml)}, "backend.client_secret_file must be /etc/kiosk/client_secret"),
        ({"--wheelhouse": None, "--wheel": str(inputs.config)}, "not a smartum_kiosk wheel"),
        ({"--wheel": str(inputs.wheel)}, "give either --wheelhouse or --wheel/--target"),
        ({"--wheelhouse": str(tmp)}, "no requirements.lock there"),
        (
            {"--wheelhouse": None, "--wheel": str(inputs.wheel), "--target": "arm-cp3"},
            "--target arm-cp3: expected ARCH-cpXY",
        ),
        ({"--ca-bundle": str(inputs.config)}, "no PEM certificate in it"),
        ({"--device": str(inputs.config), "--out": None}, "not a block device"),
    ]


def test_bad_arguments_each_give_their_message_and_exit_2(inputs, tmp_path):
    out = tmp_path / "k.img"
    failures = []
    for over, message in _bad(inputs, tmp_path):
        result = run(inputs.args(out, **over))
        if result.returncode != 2 or message not in result.stderr:
            failures.append((over, result.returncode, result.stderr))
    assert failures == []
    assert not out.exists()


def test_every_problem_is_reported_at_once(inputs, tmp_path):
    result = run(inputs.args(tmp_path / "k.img", **{"--hostname": "-x", "--wifi-country": "1"}))
    assert result.returncode == 2
    assert "--hostname -x" in result.stderr and "--wifi-country 1" in result.stderr


def test_unknown_option_and_missing_value(inputs, tmp_path):
    assert "unknown argument: --colour" in run([str(FLASH), "--colour"]).stderr
    result = run([str(FLASH), "--image"])
    assert result.returncode == 2 and "--image needs a value" in result.stderr


def test_not_a_pi_image_is_refused(inputs, tmp_path):
    plain = tmp_path / "plain.img"
    plain.write_bytes(b"\0" * 1024 * 1024)
    result = run(inputs.args(tmp_path / "k.img", **{"--image": str(plain)}))
    assert result.returncode == 1
    assert f"ERROR: {plain} has no readable partition table" in result.stderr
    compressed = tmp_path / "plain.img.xz"
    compressed.write_bytes(lzma.compress(plain.read_bytes(), preset=0))
    result = run(inputs.args(tmp_path / "k.img", **{"--image": str(compressed)}))
    assert result.returncode == 1
    assert f"ERROR: {compressed} has no readable partition table" in result.stderr
    assert not (tmp_path / "k.img").exists() and not (tmp_path / "k.img.partial").exists()


GET = "download Raspberry Pi OS Lite (64-bit), trixie, 2025-11-24 or later"


@pytest.mark.parametrize(
    ("kind", "config", "xz", "reason"),
    [
        ("bookworm64", ORIGINAL_CONFIG, True,
         "no cloud-init seed (meta-data) on its boot partition: Raspberry Pi OS bookworm, "
         "or trixie before 2025-11-24, cannot be set up by flash.sh"),
        ("trixie32", ORIGINAL_CONFIG.replace("arm_64bit=1\n", ""), True,
         "a 32-bit Raspberry Pi OS image (32-bit kernels on its boot partition)"),
        ("trixie64", ORIGINAL_CONFIG.replace("arm_64bit=1", "arm_64bit=0"), False,
         "a 32-bit Raspberry Pi OS image (arm_64bit=0 in its config.txt)"),
        ("trixie64", None, False,
         "no config.txt on its boot partition: not a Raspberry Pi OS image"),
    ],
    ids=["bookworm", "32-bit", "arm_64bit=0", "no-config.txt"],
)  # fmt: skip
def test_an_image_that_cannot_be_provisioned_is_refused_before_writing(
    inputs, tmp_path, kind, config, xz, reason
):
    image = tmp_path / "in.img"
    make_image(image, kind, config)
    if xz:
        compressed = tmp_path / "in.img.xz"
        compressed.write_bytes(lzma.compress(image.read_bytes(), preset=0))
        image.unlink()
        image = compressed
    out = tmp_path / "out" / "k.img"
    out.parent.mkdir()
    for extra in ([], ["--dry-run"]):
        result = run([*inputs.args(out, **{"--image": str(image)}), *extra])
        assert result.returncode == 2, result.stderr
        (line,) = [x for x in result.stderr.splitlines() if reason in x]
        assert line == f"flash.sh: --image {image}: {reason}" + line.split(reason, 1)[1]
        assert GET in line and "https://www.raspberrypi.com/software/operating-systems/" in line
        assert "a 32-bit" not in result.stderr or "32-bit" in reason
        assert "meta-data" not in result.stderr or "meta-data" in reason
        assert list(out.parent.iterdir()) == []


def test_a_bookworm_32_bit_image_gets_both_reasons(inputs, tmp_path):
    image = tmp_path / "in.img"
    make_image(image, "trixie32")
    subprocess.run(["mdel", "-i", f"{image}@@{OFFSET}", "::meta-data"], check=True, env=MT_ENV)
    result = run(inputs.args(tmp_path / "k.img", **{"--image": str(image)}))
    assert result.returncode == 2
    assert "a 32-bit Raspberry Pi OS image" in result.stderr
    assert "no cloud-init seed (meta-data)" in result.stderr
    assert len(result.stderr.splitlines()) == 2


def test_shellcheck_is_clean():
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is required (apt-get install shellcheck)")
    scripts = ["flash.sh", "firstboot.sh", "_firstboot_system.sh", "update.sh",
               "update-remote.sh", "wheelhouse.sh", "device-test.sh", "test.sh"]  # fmt: skip
    paths = [str(ROOT / "scripts" / s) for s in scripts]
    paths.append(str(ROOT / "tests/device/build-image.sh"))
    result = run(["shellcheck", "-x", *paths], cwd=ROOT)
    assert result.returncode == 0, result.stdout


# --- first boot -------------------------------------------------------------------------


def _boot_dir(flashed: Path, tmp_path: Path) -> Path:
    boot = tmp_path / "boot"
    boot.mkdir()
    run(["mcopy", "-s", "-i", f"{flashed}@@{OFFSET}", "::kiosk", str(boot)], env=MT_ENV, check=True)
    return boot


needs_root_tools = pytest.mark.skipif(
    os.geteuid() != 0 or not have_sysusers(), reason="first boot chowns files: needs root"
)


@needs_root_tools
def test_first_boot_installs_and_deletes_the_secret(flashed, tmp_path):
    boot = _boot_dir(flashed, tmp_path)
    pi = FakePi(tmp_path / "pi")
    (boot / "network-config").write_text("network: {wifis: {wlan0: {password: x}}}\n")
    env = dict(pi.env, KIOSK_BOOT_DIR=str(boot), KIOSK_SETTLE="0", KIOSK_APT="0")
    result = run(["bash", str(boot / "kiosk/firstboot.sh")], env=env)
    assert result.returncode == 0, result.stderr
    assert not (boot / "kiosk/client_secret").exists()
    assert not (boot / "network-config").exists()
    # The staff PIN's hash goes from the FAT once the installed copy is on disk.
    assert not (boot / "kiosk/kiosk.toml").exists()
    assert (pi.root / "etc/kiosk/kiosk.toml").read_bytes() == mbytes(flashed, "kiosk/kiosk.toml")
    assert "from the card's wheelhouse (offline)" in result.stderr
    # The technician's sudo: a checked drop-in, and sudo -n true tried as tech.
    drop_in = pi.root / "etc/sudoers.d/010_tech-nopasswd"
    st = drop_in.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o440, 0, 0)
    assert drop_in.read_bytes() == mbytes(flashed, "kiosk/010_tech-nopasswd")
    assert sorted(p.name for p in drop_in.parent.iterdir()) == ["010_tech-nopasswd"]
    assert "runuser -u tech -- sudo -n true" in pi.calls()
    assert "kiosk-firstboot: sudo -n true works for tech" in result.stderr.splitlines()
    passwd = (pi.root / "etc/passwd").read_text()
    uid = int(next(line for line in passwd.splitlines() if line.startswith("kiosk:")).split(":")[2])
    secret = pi.root / "etc/kiosk/client_secret"
    st = secret.stat()
    assert secret.read_text().strip() == SECRET
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, uid)
    cfg = (pi.root / "etc/kiosk/kiosk.toml").stat()
    assert (stat.S_IMODE(cfg.st_mode), cfg.st_uid, cfg.st_gid) == (0o640, 0, uid)
    assert (pi.root / "etc/modules-load.d/kiosk.conf").read_text() == "i2c-dev\n"
    assert pi.current() == "0.2.0"
    assert (pi.opt / "0.2.0/pyvenv.cfg").read_text() == "include-system-site-packages = true\n"
    assert (pi.opt / "0.2.0/constraints.txt").read_text() == "numpy==1.24.2\n"
    assert (pi.root / "etc/systemd/system/kiosk.service").exists()
    assert (pi.root / "usr/local/sbin/kiosk-update").exists()
    assert os.readlink(pi.root / "usr/local/bin/kiosk") == "/opt/kiosk/current/bin/kiosk"
    calls = pi.calls()
    assert "systemctl enable kiosk.service" in calls
    assert "started 0.2.0 active" in calls
    assert pi.unit_state() == "active"


@needs_root_tools
def test_first_boot_deletes_the_secret_even_when_it_fails(flashed, tmp_path):
    boot = _boot_dir(flashed, tmp_path)
    (boot / "kiosk/wheels/smartum_kiosk-0.2.0-py3-none-any.whl").unlink()
    (boot / "network-config").write_text("network: {wifis: {wlan0: {password: x}}}\n")
    pi = FakePi(tmp_path / "pi")
    result = run(
        ["bash", str(boot / "kiosk/firstboot.sh")],
        env=dict(pi.env, KIOSK_BOOT_DIR=str(boot), KIOSK_APT="0"),
    )
    assert result.returncode == 1
    assert "expected one smartum_kiosk wheel" in result.stderr
    assert not (boot / "kiosk/client_secret").exists()
    assert not (boot / "network-config").exists()


@needs_root_tools
@pytest.mark.parametrize("damage", ["rule", "missing"])
def test_first_boot_without_a_working_sudo_ends_in_error(flashed, tmp_path, damage):
    boot = _boot_dir(flashed, tmp_path)
    rule = boot / "kiosk/010_tech-nopasswd"
    if damage == "rule":
        rule.write_text("tech ALL=(ALL) NOPASSWD ALL\n")  # visudo: syntax error
    else:
        rule.unlink()
    pi = FakePi(tmp_path / "pi")
    env = dict(pi.env, KIOSK_BOOT_DIR=str(boot), KIOSK_SETTLE="0", KIOSK_APT="0")
    result = run(["bash", str(boot / "kiosk/firstboot.sh")], env=env)
    assert result.returncode == 1
    expected = "visudo rejects" if damage == "rule" else "010_tech-nopasswd is missing"
    assert expected in result.stderr
    assert "sudo for tech does not work (see above)" in result.stderr.splitlines()[-1]
    # Nothing half-checked counts for sudo, and the kiosk itself is still installed.
    assert list((pi.root / "etc/sudoers.d").glob("*")) == []
    assert pi.current() == "0.2.0"
    assert not (boot / "kiosk/client_secret").exists()


# In a private mount namespace: /etc/passwd, /etc/shadow and /etc/group are copies
# holding a `tech` account with a locked password (as cloud-init's lock_passwd makes
# it), and /etc/sudoers.d is empty; then firstboot's system_sudo runs for real (visudo,
# runuser, sudo, PAM). Nothing of this reaches the machine's own files.
REAL_SUDO = r"""
set -euo pipefail
work=$1 src=$2 install=$3
for f in passwd shadow group; do cp /etc/$f "$work/$f"; done
echo 'tech:x:4242:4242:Kiosk technician:/nonexistent:/bin/bash' >>"$work/passwd"
echo 'tech:!:20000:0:99999:7:::' >>"$work/shadow"
echo 'tech:x:4242:' >>"$work/group"
for f in passwd shadow group; do mount --bind "$work/$f" /etc/$f; done
mount -t tmpfs -o mode=0755 tmpfs /etc/sudoers.d
log() { printf 'kiosk-firstboot: %s\n' "$*" >&2; }
ROOT="" SRC=$src
source "$LIB"
if [[ $install == yes ]]; then
    system_sudo
else
    runuser -u tech -- sudo -n true
fi
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("sudo") is None,
    reason="needs root, unshare and sudo",
)
def test_the_sudo_rule_lets_a_locked_tech_account_run_sudo_without_a_password(flashed, tmp_path):
    src = tmp_path / "kiosk"
    src.mkdir()
    (src / "010_tech-nopasswd").write_bytes(mbytes(flashed, "kiosk/010_tech-nopasswd"))
    env = dict(os.environ, LIB=str(ROOT / "scripts/_firstboot_system.sh"))

    def in_namespace(install: str) -> subprocess.CompletedProcess[str]:
        work = tmp_path / f"etc-{install}"
        work.mkdir()
        argv = ["unshare", "--mount", "--propagation", "private", "bash", "-c", REAL_SUDO,
                "real-sudo", str(work), str(src), install]  # fmt: skip
        return run(argv, env=env)

    # Without the rule, a locked account cannot use sudo (Raspberry Pi OS since 2026-04).
    without = in_namespace("no")
    assert without.returncode != 0
    assert "password is required" in without.stderr
    done = in_namespace("yes")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "kiosk-firstboot: sudo -n true works for tech" in lines
    assert not Path("/etc/sudoers.d/010_tech-nopasswd").exists()  # the namespace's only


# --- block devices (loop devices) -------------------------------------------------------

needs_loop = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("losetup") is None, reason="needs root and losetup"
)


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    backing = tmp_path / "card.img"
    with backing.open("wb") as f:
        f.truncate(IMAGE_MB * 1024 * 1024)
    result = run(["losetup", "--find", "--show", str(backing)])
    if result.returncode != 0:
        pytest.skip(f"no loop devices here: {result.stderr.strip()}")
    dev = result.stdout.strip()
    try:
        yield dev, backing
    finally:
        run(["losetup", "-d", dev])


@needs_loop
def test_writes_a_card_with_yes(inputs, loop_device):
    dev, _ = loop_device
    result = run([*inputs.args(Path(), **{"--out": None, "--device": dev}), "--yes"])
    assert result.returncode == 0, result.stderr
    assert "dtparam=i2c_arm=on" in mtype(dev, "config.txt")
    assert "client_secret" in mfiles(dev, "kiosk")


@needs_loop
def test_a_card_is_not_written_when_the_image_is_refused(inputs, loop_device, tmp_path):
    dev, backing = loop_device
    image = tmp_path / "bookworm.img"
    make_image(image, "bookworm64")
    argv = [
        *inputs.args(Path(), **{"--image": str(image), "--out": None, "--device": dev}),
        "--yes",
    ]
    result = run(argv)
    assert result.returncode == 2
    assert "no cloud-init seed (meta-data)" in result.stderr
    assert backing.read_bytes()[: 1024 * 1024] == b"\0" * 1024 * 1024


@needs_loop
def test_asks_before_writing_a_card(inputs, loop_device):
    dev, backing = loop_device
    result = run(inputs.args(Path(), **{"--out": None, "--device": dev}), start_new_session=True)
    assert result.returncode == 1
    assert "Type yes" in result.stderr and "not confirmed; nothing written" in result.stderr
    assert backing.read_bytes()[: 1024 * 1024] == b"\0" * 1024 * 1024


@needs_loop
def test_refuses_a_mounted_card(inputs, loop_device, tmp_path):
    dev, _ = loop_device
    run(["mkfs.ext4", "-q", dev], check=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if run(["mount", dev, str(mnt)]).returncode != 0:
        pytest.skip("cannot mount here")
    try:
        result = run([*inputs.args(Path(), **{"--out": None, "--device": dev}), "--yes"])
    finally:
        run(["umount", str(mnt)])
    assert result.returncode == 2
    assert f"--device {dev}: is mounted ({dev} on {mnt}); unmount it first" in result.stderr


def test_refuses_the_disk_holding_root(inputs):
    source = run(["findmnt", "-no", "SOURCE", "/"]).stdout.strip()
    disk = run(["lsblk", "-no", "PKNAME", source]).stdout.strip() if source else ""
    disk = f"/dev/{disk}" if disk else source
    if not disk.startswith("/dev/") or not stat.S_ISBLK(os.stat(disk).st_mode):
        pytest.skip(f"the root filesystem is not on a block device here ({source!r})")
    result = run([*inputs.args(Path(), **{"--out": None, "--device": disk}), "--yes"])
    assert result.returncode == 2
    assert "holds the running system's root filesystem; refusing" in result.stderr
