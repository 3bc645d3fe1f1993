"""Display on luma's dummy device, the PNG twin, and I2C panels on a recording bus."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from luma.core.device import dummy
from PIL import Image

from hardware.display import Display, PngDevice, make_device
from kiosk import screens, views
from kiosk.config import DisplayConfig
from kiosk.errors import DeviceNotFound, HardwareError


class RecordingSerial:
    """A luma serial interface that keeps every command it is sent."""

    def __init__(self) -> None:
        self.commands: list[tuple[int, ...]] = []
        self.data_bytes = 0

    def command(self, *cmd: int) -> None:
        self.commands.append(cmd)

    def data(self, data: list[int]) -> None:
        self.data_bytes += len(data)

    def cleanup(self) -> None:
        pass


class RecordingBus:
    """An SMBus stand-in: records block writes, or fails them with *error*."""

    def __init__(self, error: int | None = None) -> None:
        self.error = error
        self.writes: list[tuple[int, int, list[int]]] = []

    def write_i2c_block_data(self, addr: int, register: int, data: list[int]) -> None:
        if self.error is not None:
            raise OSError(self.error, "simulated bus error")
        self.writes.append((addr, register, list(data)))

    def close(self) -> None:
        pass


class BrokenDevice(dummy):
    def display(self, image: Image.Image) -> None:
        raise OSError(errno.EREMOTEIO, "Remote I/O error")


def frame(name: str = "checked") -> Image.Image:
    return screens.render(dict(screens.samples())[name], "fi")


def test_show_puts_the_frame_on_the_device_once() -> None:
    device = dummy(width=128, height=64, mode="1")
    display = Display(device=device)
    assert display.last_image is None
    display.show(frame())
    assert device.image.tobytes() == frame().tobytes()
    display.show(frame())  # unchanged: not sent again
    display.show(frame("ready"))
    assert display.frames == 2
    assert display.last_image is not None
    assert display.last_image.tobytes() == frame("ready").tobytes()


def test_show_rejects_a_wrong_size() -> None:
    display = Display(device=dummy(width=128, height=64, mode="1"))
    with pytest.raises(ValueError, match="64x32"):
        display.show(Image.new("1", (64, 32)))


def test_dim_lowers_and_restores_contrast() -> None:
    serial = RecordingSerial()
    device = dummy(width=128, height=64, mode="1", serial_interface=serial)
    display = Display(device=device, contrast=200, dim_contrast=5)
    display.dim(True)
    display.dim(True)  # already dim: nothing sent
    display.dim(False)
    assert serial.commands == [(0x81, 5), (0x81, 200)]
    assert display.dimmed is False


def test_close_is_idempotent_keeps_the_image_and_refuses_more() -> None:
    device = dummy(width=128, height=64, mode="1")
    display = Display(device=device)
    display.show(frame())
    display.close()
    display.close()
    assert display.closed and device.persist is True
    assert device.image.tobytes() == frame().tobytes()
    with pytest.raises(HardwareError, match="closed"):
        display.show(frame("ready"))
    with pytest.raises(HardwareError):
        display.dim(True)


def test_close_with_clear_blanks_the_panel() -> None:
    device = dummy(width=128, height=64, mode="1")
    with Display(device=device) as display:
        display.show(frame())
        display.close(clear=True)
    assert device.image.getbbox() is None


def test_a_failing_panel_becomes_a_hardware_error() -> None:
    display = Display(device=BrokenDevice(width=128, height=64, mode="1"))
    with pytest.raises(HardwareError, match="wiring"):
        display.show(frame())


def test_png_twin_writes_numbered_frames_and_latest(tmp_path: Path) -> None:
    folder = tmp_path / "screens"
    folder.mkdir()
    (folder / "frame-000099.png").write_bytes(b"old run")
    device = PngDevice(folder, keep=3)
    display = Display(device=device)
    names = ["ready", "checking_receipt", "checked", "ready_offline", "already_checked"]
    for name in names:
        display.show(frame(name))
    stored = sorted(p.name for p in folder.glob("frame-*.png"))
    assert stored == ["frame-000003.png", "frame-000004.png", "frame-000005.png"]
    with Image.open(folder / "latest.png") as latest:
        assert latest.size == (128, 64)
        assert latest.convert("1").tobytes() == frame("already_checked").tobytes()
    assert device.image.tobytes() == frame("already_checked").tobytes()


def test_make_device_png_and_none(tmp_path: Path) -> None:
    png = make_device(DisplayConfig(driver="png", png_dir=str(tmp_path / "out")))
    assert isinstance(png, PngDevice) and (tmp_path / "out").is_dir()
    none = make_device(DisplayConfig(driver="none"))
    assert (none.width, none.height, none.mode) == (128, 64, "1")
    Display(device=none).show(screens.render(views.Checking()))


def test_png_folder_that_cannot_be_made_is_explained(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(HardwareError, match="png_dir"):
        make_device(DisplayConfig(driver="png", png_dir=str(blocker / "sub")))


@pytest.mark.parametrize("driver", ["ssd1306", "sh1106"])
def test_i2c_panels_initialise_and_draw_over_the_bus(driver: str) -> None:
    bus = RecordingBus()
    device = make_device(DisplayConfig(driver=driver, address=0x3D, contrast=77), bus=bus)
    assert {addr for addr, _, _ in bus.writes} == {0x3D}
    assert (0x81, 77) in [tuple(d) for _, reg, d in bus.writes if reg == 0x00]
    before = len(bus.writes)
    display = Display(device=device)
    display.show(frame())
    assert any(reg == 0x40 for _, reg, _ in bus.writes[before:])  # pixel data was sent
    device.persist = True  # do not blank at interpreter exit


def test_missing_i2c_bus_says_to_enable_i2c() -> None:
    with pytest.raises(DeviceNotFound, match="raspi-config") as err:
        make_device(DisplayConfig(driver="ssd1306", i2c_port=9))
    assert "/dev/i2c-9" in str(err.value)


def test_nothing_at_the_address_says_to_check_wiring_and_address() -> None:
    with pytest.raises(DeviceNotFound, match="0x3C") as err:
        make_device(DisplayConfig(driver="ssd1306"), bus=RecordingBus(errno.EREMOTEIO))
    assert "i2cdetect" in str(err.value) and "0x3D" in str(err.value)


def test_other_bus_errors_become_hardware_errors() -> None:
    with pytest.raises(HardwareError, match="0x3C"):
        make_device(DisplayConfig(driver="sh1106"), bus=RecordingBus(errno.EACCES))
