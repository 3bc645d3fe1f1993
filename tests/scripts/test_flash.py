"""scripts/flash.sh on a Raspberry Pi OS-like image made here (MBR, FAT32 boot, ext4 root).

The result is read back with mtools. First boot (scripts/firstboot.sh) runs against
a root directory with fake systemctl/python3 (tests/scripts/fake_pi.py).
Block-device tests use loop devices and run only as root with losetup.
"""

from __future__ import annotations

import hashlib
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
    "# Raspberry Pi OS\ncamera_auto_detect=1\n#dtparam=i2c_arm=on\n[pi4]\narm_boost=1\n"
)
ORIGINAL_CMDLINE = "console=serial0,115200 console=tty1 root=PARTUUID=abcd-02 rootwait\n"

for tool in ("mtype", "mcopy", "sfdisk", "mkfs.vfat", "mkfs.ext4", "ssh-keygen"):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is needed to build a test image", allow_module_level=True)

MT_ENV = dict(os.environ, MTOOLS_SKIP_CHECK="1")


def make_image(path: Path) -> None:
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
    src = path.parent / "fat-src"
    src.mkdir(exist_ok=True)
    (src / "config.txt").write_text(ORIGINAL_CONFIG)
    (src / "cmdline.txt").write_text(ORIGINAL_CMDLINE)
    subprocess.run(
        ["mcopy", "-i", f"{path}@@{OFFSET}", str(src / "config.txt"), str(src / "cmdline.txt"),
         "::"],
        check=True, env=MT_ENV,
    )  # fmt: skip


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
        "update-remote.sh",
        "kiosk-packages.sh",
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
    (user,) = data["users"]
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


def test_network_config_has_the_wifi_and_country(flashed):
    net = yaml.safe_load(mtype(flashed, "network-config"))["network"]
    assert net["version"] == 2
    wlan = net["wifis"]["wlan0"]
    assert wlan["dhcp4"] is True
    assert wlan["regulatory-domain"] == "FI"
    assert wlan["access-points"] == {'Studio "Lotus"': {"password": PSK}}
    # Ethernet works too, also when the Wi-Fi is configured.
    assert net["ethernets"]["eth0"] == {"dhcp4": True, "optional": True}
    cmdline = mtype(flashed, "cmdline.txt")
    assert cmdline == ORIGINAL_CMDLINE.strip() + " cfg80211.ieee80211_regdom=FI\n"


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
    holding_psk = [n for n in names if PSK.encode() in mbytes(flashed, n)]
    assert holding_secret == ["kiosk/client_secret"]  # deleted by first boot (below)
    assert holding_psk == ["network-config"]  # cloud-init needs it to join the Wi-Fi


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


def test_without_wifi_there_is_no_network_config(inputs, tmp_path):
    out = tmp_path / "k.img"
    result = run(
        inputs.args(
            out, **{"--wifi-ssid": None, "--wifi-psk-file": None, "--wifi-country": None,
                    "--image": str(inputs.image)}
        )
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "network-config" not in mfiles(out)
    assert mtype(out, "cmdline.txt") == ORIGINAL_CMDLINE


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
    assert "no readable partition table" in result.stderr or "no partitions" in result.stderr
    assert not (tmp_path / "k.img").exists() and not (tmp_path / "k.img.partial").exists()


def test_shellcheck_is_clean():
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is required (apt-get install shellcheck)")
    scripts = ["flash.sh", "firstboot.sh", "update.sh", "update-remote.sh", "wheelhouse.sh",
               "device-test.sh", "test.sh"]  # fmt: skip
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
    assert "from the card's wheelhouse (offline)" in result.stderr
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
