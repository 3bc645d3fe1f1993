"""CameraReader: one thread that reads the newest frame, skips still pictures, decodes.

Idle economy: every frame is first reduced to a small thumbnail (a 4x4 block
mean over every fourth pixel, 1/16 of each side: 40x30 for 640x480, about
0.1 ms). When its mean absolute difference from the thumbnail of the last
decoded frame is below ``idle_threshold`` grey levels, the frame is skipped
without decoding. Block means average out sensor noise, so an empty counter
stays "unchanged" while a hand or phone entering the picture does not. A
still picture is nevertheless decoded again every ``refresh`` seconds, so a
phone held perfectly still after an unlucky first frame (motion blur,
autofocus still settling) is read within that time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from hardware.camera.frames import FrameSource
from kiosk.decode import Decoder
from kiosk.errors import HardwareError
from kiosk.events import Scan, ScanFault
from kiosk.worker import Worker

__all__ = ["CameraReader", "IdleGate", "thumbnail"]

log = logging.getLogger(__name__)

_STEP = 4  # sample every 4th pixel ...
_BLOCK = 4  # ... and average 4x4 samples: one thumbnail pixel per 16x16 frame pixels
_READ_TIMEOUT = 0.5
_FAULT_PAUSE = 1.0


def thumbnail(pixels: np.ndarray) -> np.ndarray:
    """A small float32 thumbnail of a 2-D frame (1/16 of each side), for change detection."""
    cell = _STEP * _BLOCK
    h = pixels.shape[0] // cell * cell
    w = pixels.shape[1] // cell * cell
    if h == 0 or w == 0:
        return pixels.astype(np.float32)
    sampled = pixels[:h:_STEP, :w:_STEP]
    blocks = sampled.reshape(h // cell, _BLOCK, w // cell, _BLOCK).astype(np.uint16)
    return blocks.sum(axis=(1, 3), dtype=np.uint16).astype(np.float32) / (_BLOCK * _BLOCK)


class IdleGate:
    """Says whether a frame differs enough from the last one that was decoded."""

    def __init__(self, threshold: float, refresh: float = 1.0) -> None:
        self.threshold = threshold
        self.refresh = refresh
        self._ref: np.ndarray | None = None
        self._ref_at = 0.0

    def changed(self, pixels: np.ndarray, at: float) -> bool:
        """True if *pixels* should be decoded; it then becomes the new reference."""
        thumb = thumbnail(pixels)
        ref = self._ref
        if (
            ref is not None
            and ref.shape == thumb.shape
            and at - self._ref_at < self.refresh
            and float(np.mean(np.abs(thumb - ref))) < self.threshold
        ):
            return False
        self._ref, self._ref_at = thumb, at
        return True


class CameraReader(Worker):
    """Reads *source* on its own thread, decodes changed frames, reports codes.

    ``on_event`` receives ``Scan(text, "camera", at)`` with the best text of a
    frame (SmartumPay tokens first), or ``ScanFault("camera", "unplugged")``
    once when the camera fails and ``ScanFault("camera", "replugged")`` when
    frames arrive again. It is called on the reader thread and must only
    enqueue. ``last_frame_at`` is the monotonic time of the last frame read:
    when it goes stale the camera has hung.
    """

    def __init__(
        self,
        source: FrameSource,
        decoder: Decoder,
        on_event: Callable[[Scan | ScanFault], None],
        *,
        idle_threshold: float = 4.0,
        refresh: float = 1.0,
    ) -> None:
        self._source = source
        self._decoder = decoder
        self._on_event = on_event
        super().__init__("camera-reader")
        self._gate = IdleGate(idle_threshold, refresh)
        self._faulted = False
        self.last_frame_at: float | None = None
        self.frames_seen = 0
        self.frames_decoded = 0

    def start(self) -> None:
        """Start the reader thread. Raises RuntimeError if already started."""
        if self._thread is not None:
            raise RuntimeError("camera reader already started")
        super().start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop the thread and wait at most *timeout* s; the source stays open (caller owns it).

        Raises HardwareError if the thread is still running afterwards.
        """
        if not super().stop(timeout):
            raise HardwareError(f"camera reader did not stop within {timeout} s")
        return True

    @property
    def running(self) -> bool:
        return self.alive

    def _step(self) -> None:
        """Read one frame and decode it if the picture changed."""
        try:
            frame = self._source.read(_READ_TIMEOUT)
        except HardwareError as err:
            self._fault(str(err))
            self._stopping.wait(_FAULT_PAUSE)
            return
        if frame is None:
            return
        if self._faulted:
            self._faulted = False
            self._on_event(ScanFault("camera", "replugged", time.monotonic()))
        self.last_frame_at = frame.at
        self.frames_seen += 1
        if not self._gate.changed(frame.pixels, frame.at):
            return
        self.frames_decoded += 1
        try:
            texts = self._decoder.decode(frame.pixels)
        except Exception:  # a decoder bug must not stop the camera
            log.exception("decoding frame %d failed", frame.seq)
            return
        if texts:
            self._on_event(Scan(texts[0], "camera", frame.at))

    def _fault(self, detail: str) -> None:
        if not self._faulted:
            self._faulted = True
            log.error("camera: %s", detail)
            self._on_event(ScanFault("camera", "unplugged", time.monotonic(), detail))
