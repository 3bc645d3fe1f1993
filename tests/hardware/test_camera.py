"""Frame sources and the camera reader: replay timing, latest-frame-wins, idle skip, faults."""

from __future__ import annotations

import io
import queue
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import segno
from PIL import Image

from hardware.camera import (
    CameraReader,
    Frame,
    IdleGate,
    PiCameraSource,
    ReplaySource,
    camera_controls_for,
)
from kiosk.config import CameraConfig
from kiosk.decode import Decoder, make_decoder
from kiosk.errors import DeviceNotFound, HardwareError
from kiosk.events import Scan, ScanFault

TEXT = "123456789012"


def scene(seed: int, noise: float = 3.0) -> np.ndarray:
    """An empty counter: a fixed gradient with fresh sensor noise per *seed*."""
    rng = np.random.default_rng(seed)
    base = np.linspace(60, 190, 640, dtype=np.float32)[None, :] + np.zeros((480, 1), np.float32)
    base[300:420, 100:260] = 40  # a dark object on the counter
    return np.clip(base + rng.normal(0, noise, base.shape), 0, 255).astype(np.uint8)


def with_code(pixels: np.ndarray, text: str = TEXT) -> np.ndarray:
    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=6, border=4)
    buf.seek(0)
    code = np.asarray(Image.open(buf).convert("L"))
    out = pixels.copy()
    out[100 : 100 + code.shape[0], 250 : 250 + code.shape[1]] = code
    return out


class RecordingDecoder(Decoder):
    """Wraps the real decoder; remembers the first pixel of each frame it was given."""

    kind = "recording"

    def __init__(self, delay: float = 0.0) -> None:
        self._real = make_decoder("zxing")
        self.delay = delay
        self.seen: list[int] = []

    def _read(self, pixels: np.ndarray) -> list[str]:
        self.seen.append(int(pixels[0, 0]))
        if self.delay:
            time.sleep(self.delay)  # stands in for a slow decode on a busy CPU
        return self._real.decode(pixels)


class CountingSource:
    """A FrameSource wrapper that signals after *n* frames were read."""

    def __init__(self, inner: Any, n: int) -> None:
        self.inner, self.n, self.count = inner, n, 0
        self.reached = threading.Event()

    def read(self, timeout: float) -> Frame | None:
        frame = self.inner.read(timeout)
        if frame is not None:
            self.count += 1
            if self.count >= self.n:
                self.reached.set()
        return frame

    def close(self) -> None:
        self.inner.close()


def run_reader(source: Any, decoder: Decoder, **kwargs: Any) -> tuple[CameraReader, queue.Queue]:
    events: queue.Queue = queue.Queue()
    reader = CameraReader(source, decoder, events.put, **kwargs)
    reader.start()
    return reader, events


# --- ReplaySource --------------------------------------------------------------------------


def test_replay_paces_frames_and_ends() -> None:
    frames = [np.full((8, 8), i, np.uint8) for i in range(3)]
    source = ReplaySource(frames, fps=200.0)
    got = [source.read(1.0) for _ in range(3)]
    assert [f.seq for f in got if f] == [0, 1, 2]
    assert [int(f.pixels[0, 0]) for f in got if f] == [0, 1, 2]
    assert got[0] is not None and got[2] is not None and got[2].at - got[0].at >= 0.009
    started = time.monotonic()
    assert source.read(0.05) is None  # exhausted: behaves like a camera that hung
    assert time.monotonic() - started >= 0.04


def test_replay_returns_the_newest_frame_and_counts_skips() -> None:
    frames = [np.full((8, 8), i, np.uint8) for i in range(50)]
    source = ReplaySource(frames, fps=1000.0)
    first = source.read(1.0)
    time.sleep(0.02)  # the reader is busy elsewhere while frames go by
    later = source.read(1.0)
    assert first is not None and later is not None
    assert later.seq >= first.seq + 10
    assert source.skipped == later.seq - first.seq - 1


def test_replay_loops_and_close_wakes_reader() -> None:
    source = ReplaySource([np.zeros((4, 4), np.uint8)], fps=1000.0, loop=True)
    seqs = [f.seq for f in (source.read(1.0) for _ in range(5)) if f]
    assert len(seqs) == 5 and seqs == sorted(seqs)
    slow = ReplaySource([np.zeros((4, 4), np.uint8)] * 2, fps=0.1)
    assert slow.read(1.0) is not None
    threading.Timer(0.05, slow.close).start()
    started = time.monotonic()
    assert slow.read(5.0) is None
    assert time.monotonic() - started < 2.0
    slow.close()  # idempotent


def test_replay_folder(tmp_path: Path) -> None:
    for i in range(2):
        Image.fromarray(np.full((6, 9, 3), 40 * i, np.uint8)).save(tmp_path / f"f{i}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    source = ReplaySource(tmp_path, fps=500.0)
    frames = [source.read(1.0), source.read(1.0)]
    assert all(f is not None and f.pixels.shape == (6, 9) for f in frames)
    with pytest.raises(DeviceNotFound, match="does not exist"):
        ReplaySource(tmp_path / "nope")
    with pytest.raises(ValueError, match="2-D uint8"):
        ReplaySource([np.zeros((4, 4, 3), np.uint8)])


# --- CameraReader ----------------------------------------------------------------------------


def test_reader_reports_code_from_camera() -> None:
    source = ReplaySource([scene(0), with_code(scene(1))], fps=50.0, loop=True)
    reader, events = run_reader(source, make_decoder("zxing"))
    try:
        event = events.get(timeout=5.0)
    finally:
        reader.stop()
    assert isinstance(event, Scan)
    assert (event.text, event.source) == (TEXT, "camera")
    assert reader.last_frame_at is not None and reader.frames_seen >= 2


def test_slow_decoder_never_makes_frames_queue() -> None:
    frames = [np.full((480, 640), 4 * i, np.uint8) for i in range(60)]
    source = CountingSource(ReplaySource(frames, fps=200.0), n=1000)
    decoder = RecordingDecoder(delay=0.03)
    reader, _ = run_reader(source, decoder, idle_threshold=1.0)
    try:
        deadline = time.monotonic() + 10
        while (not decoder.seen or decoder.seen[-1] != 4 * 59) and time.monotonic() < deadline:
            source.reached.wait(0.01)
    finally:
        reader.stop()
    indices = [v // 4 for v in decoder.seen]
    assert indices[-1] == 59  # the newest frame was decoded ...
    assert len(indices) < 30  # ... and most frames were skipped, not queued
    assert indices == sorted(indices) and max(np.diff(indices)) > 1
    assert reader.frames_seen == len(indices)


def test_still_empty_counter_is_skipped_without_decoding() -> None:
    source = CountingSource(ReplaySource([scene(i) for i in range(5)], fps=500, loop=True), 60)
    decoder = RecordingDecoder()
    reader, events = run_reader(source, decoder, refresh=60.0)
    try:
        assert source.reached.wait(5.0)
    finally:
        reader.stop()
    assert reader.frames_seen >= 60
    assert reader.frames_decoded == 1 == len(decoder.seen)
    assert events.empty()


def test_change_in_picture_is_decoded_after_idle() -> None:
    frames = [scene(i) for i in range(10)] + [with_code(scene(10 + i)) for i in range(10)]
    source = ReplaySource(frames, fps=200.0)
    decoder = RecordingDecoder()
    reader, events = run_reader(source, decoder, refresh=60.0)
    try:
        event = events.get(timeout=5.0)
    finally:
        reader.stop()
    assert isinstance(event, Scan) and event.text == TEXT
    assert reader.frames_decoded <= 3


def test_still_picture_is_decoded_again_after_refresh() -> None:
    gate = IdleGate(threshold=4.0, refresh=1.0)
    assert gate.changed(scene(0), at=10.0)
    assert not gate.changed(scene(1), at=10.5)
    assert gate.changed(scene(2), at=11.1)
    assert gate.changed(with_code(scene(3)), at=11.2)


class FailingSource:
    """A camera that fails for a while, then delivers frames again."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.replay = ReplaySource([with_code(scene(0))], fps=100.0, loop=True)

    def read(self, timeout: float) -> Frame | None:
        if self.failures:
            self.failures -= 1
            raise HardwareError("camera failed: frontend timeout")
        return self.replay.read(timeout)

    def close(self) -> None:
        self.replay.close()


def test_camera_failure_is_reported_then_recovery() -> None:
    reader, events = run_reader(FailingSource(failures=2), make_decoder("zxing"))
    try:
        got = [events.get(timeout=5.0) for _ in range(3)]
    finally:
        reader.stop()
    assert isinstance(got[0], ScanFault) and got[0].reason == "unplugged"
    assert "frontend timeout" in got[0].detail
    assert isinstance(got[1], ScanFault) and got[1].reason == "replugged"
    assert isinstance(got[2], Scan) and got[2].text == TEXT


def test_hung_camera_shows_in_last_frame_at() -> None:
    source = CountingSource(ReplaySource([scene(0), scene(1)], fps=100.0), n=2)
    reader, _ = run_reader(source, make_decoder("zxing"))
    try:
        assert source.reached.wait(5.0)
        last = reader.last_frame_at
        assert last is not None
        threading.Event().wait(0.6)  # longer than one read timeout: no new frame may appear
        assert reader.last_frame_at == last and reader.frames_seen == 2
        assert time.monotonic() - last > 0.5
    finally:
        reader.stop()
    assert not reader.running


# --- PiCameraSource --------------------------------------------------------------------------

CM3_CONTROLS = {
    "AfMode": (0, 2, 0),
    "LensPosition": (0.0, 15.0, 1.0),
    "AeMeteringMode": (0, 3, 0),
    "AeExposureMode": (0, 3, 0),
    "ExposureTime": (26, 220_000_000, 20_000),
    "ExposureValue": (-8.0, 8.0, 0.0),
    "FrameDurationLimits": (8_000, 220_000_000, 33_333),
}
V2_CONTROLS = {k: v for k, v in CM3_CONTROLS.items() if k not in ("AfMode", "LensPosition")}


class FakePicamera2:
    """Records what PiCameraSource asks of picamera2; serves YUV420 buffers."""

    def __init__(self, controls: dict, *, start_error: Exception | None = None) -> None:
        self.camera_controls = controls
        self.calls: list[tuple[str, Any]] = []
        self.start_error = start_error
        self.frames: list[Any] = []

    def create_video_configuration(self, **kwargs: Any) -> dict:
        self.calls.append(("create_video_configuration", kwargs))
        return {"made": kwargs}

    def configure(self, config: Any) -> None:
        self.calls.append(("configure", config))

    def start(self) -> None:
        self.calls.append(("start", None))
        if self.start_error:
            raise self.start_error

    def capture_array(self, name: str, wait: float | None = None) -> np.ndarray:
        self.calls.append(("capture_array", (name, wait)))
        item = self.frames.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def stop(self) -> None:
        self.calls.append(("stop", None))

    def close(self) -> None:
        self.calls.append(("close", None))


class FakeModule:
    def __init__(self, camera: FakePicamera2 | None = None, error: Exception | None = None):
        self.camera, self.error = camera, error

    def Picamera2(self) -> FakePicamera2:  # picamera2 names its class so
        if self.error is not None:
            raise self.error
        assert self.camera is not None
        return self.camera


def test_camera_module_3_gets_continuous_af_and_lores_yuv() -> None:
    cam = FakePicamera2(CM3_CONTROLS)
    source = PiCameraSource(CameraConfig(), picamera2=FakeModule(cam))
    name, kwargs = cam.calls[0]
    assert name == "create_video_configuration"
    assert kwargs["lores"] == {"size": (640, 480), "format": "YUV420"}
    controls = kwargs["controls"]
    assert controls["AfMode"] == 2
    assert "LensPosition" not in controls
    assert controls["AeMeteringMode"] == 0  # centre-weighted
    assert controls["ExposureValue"] == -0.5
    assert controls["FrameDurationLimits"] == (100_000, 100_000)
    assert controls["ExposureTime"] == 12_000 and controls["AeExposureMode"] == 1
    assert [c[0] for c in cam.calls[1:]] == ["configure", "start"]
    source.close()
    source.close()
    assert [c[0] for c in cam.calls[-2:]] == ["stop", "close"]
    assert sum(c[0] == "close" for c in cam.calls) == 1


def test_fixed_focus_fallbacks() -> None:
    cfg = CameraConfig(autofocus="fixed", lens_position=6.0, metering="spot")
    cm3_fixed = camera_controls_for(cfg, CM3_CONTROLS)
    assert cm3_fixed["AfMode"] == 0 and cm3_fixed["LensPosition"] == 6.0
    assert cm3_fixed["AeMeteringMode"] == 1
    v2 = camera_controls_for(CameraConfig(), V2_CONTROLS)
    assert "AfMode" not in v2 and "LensPosition" not in v2
    long_cap = camera_controls_for(replace(CameraConfig(), max_exposure_us=200_000), V2_CONTROLS)
    assert "ExposureTime" not in long_cap and "AeExposureMode" not in long_cap


def test_frames_are_y_plane_views_without_copy() -> None:
    cam = FakePicamera2(CM3_CONTROLS)
    yuv = np.arange(720 * 704, dtype=np.uint32).astype(np.uint8).reshape(720, 704)
    cam.frames = [yuv, TimeoutError("no frame")]
    source = PiCameraSource(CameraConfig(), picamera2=FakeModule(cam))
    frame = source.read(0.25)
    assert frame is not None and frame.pixels.shape == (480, 640)
    assert np.shares_memory(frame.pixels, yuv)
    assert cam.calls[-1] == ("capture_array", ("lores", 0.25))
    assert source.read(0.25) is None


def test_camera_errors_are_translated() -> None:
    with pytest.raises(DeviceNotFound, match="no camera found"):
        PiCameraSource(CameraConfig(), picamera2=FakeModule(error=IndexError("list index")))
    busy = RuntimeError("Failed to acquire camera: Device or resource busy")
    with pytest.raises(HardwareError, match="camera busy"):
        PiCameraSource(CameraConfig(), picamera2=FakeModule(error=busy))
    cam = FakePicamera2(CM3_CONTROLS, start_error=RuntimeError("Device or resource busy"))
    with pytest.raises(HardwareError, match="busy"):
        PiCameraSource(CameraConfig(), picamera2=FakeModule(cam))
    assert cam.calls[-1][0] == "close"
    cam2 = FakePicamera2(CM3_CONTROLS)
    cam2.frames = [RuntimeError("Camera frontend has timed out!")]
    source = PiCameraSource(CameraConfig(), picamera2=FakeModule(cam2))
    with pytest.raises(HardwareError, match="camera failed"):
        source.read(1.0)


def test_missing_picamera2_is_device_not_found() -> None:
    with pytest.raises(DeviceNotFound, match="python3-picamera2"):
        PiCameraSource(CameraConfig())
