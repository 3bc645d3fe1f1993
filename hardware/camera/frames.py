"""Frames and frame sources: the interface every camera satisfies, and its replay twin.

A ``FrameSource`` hands out the newest frame only (latest-frame-wins): a reader
that was busy decoding never receives a backlog, frames it missed are simply
gone. ``ReplaySource`` imitates a live camera from stored images with exactly
that behaviour, for tests, ``kiosk demo`` and the benchmarks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from kiosk.errors import DeviceNotFound

__all__ = ["IMAGE_SUFFIXES", "Frame", "FrameSource", "ReplaySource"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".pgm", ".tif", ".tiff"})


@dataclass(frozen=True, eq=False)
class Frame:
    """One picture: ``pixels`` is 2-D uint8 (a view of the Y plane, not a copy).

    ``seq`` counts frames produced by the source (gaps mean frames were dropped),
    ``at`` is ``time.monotonic()`` when the frame was taken.
    """

    pixels: np.ndarray
    seq: int
    at: float


class FrameSource(Protocol):
    """Anything that yields the newest camera frame."""

    def read(self, timeout: float) -> Frame | None:
        """The newest frame not yet returned, waiting at most *timeout* seconds; None if none.

        Raises HardwareError (or a subclass) when the camera failed. One reader thread only.
        """
        ...

    def close(self) -> None:
        """Release the camera; idempotent, wakes a blocked ``read``."""
        ...


class ReplaySource:
    """Replays a list of frames or a folder of images as a live camera running at *fps*.

    Frame *i* becomes current at ``start + i / fps`` (the clock starts at the
    first ``read``); ``read`` returns the newest current frame, skipping any
    that became current while the caller was busy, like a real sensor. Without
    *loop* the source stops producing after the last frame, and ``read`` then
    waits out its timeout and returns None, like a camera that hung.
    """

    def __init__(
        self, frames: Sequence[np.ndarray] | Path, *, fps: float = 10.0, loop: bool = False
    ) -> None:
        if fps <= 0:
            raise ValueError("fps must be > 0")
        self._frames = _load_folder(frames) if isinstance(frames, Path) else list(frames)
        if not self._frames:
            raise ValueError("a replay source needs at least one frame")
        for pixels in self._frames:
            if pixels.ndim != 2 or pixels.dtype != np.uint8:
                raise ValueError("replay frames must be 2-D uint8 grayscale arrays")
        self._period = 1.0 / fps
        self._loop = loop
        self._start: float | None = None
        self._next = 0  # lowest sequence number not yet returned
        self._closed = threading.Event()
        self.skipped = 0  # frames that went by while the reader was busy

    def read(self, timeout: float) -> Frame | None:
        if self._closed.is_set():
            return None
        now = time.monotonic()
        if self._start is None:
            self._start = now
        deadline = now + max(0.0, timeout)
        while True:
            current = int((now - self._start) / self._period)
            if not self._loop:
                current = min(current, len(self._frames) - 1)
            if current >= self._next:
                self.skipped += current - self._next
                self._next = current + 1
                pixels = self._frames[current % len(self._frames)]
                return Frame(pixels=pixels, seq=current, at=now)
            exhausted = not self._loop and self._next >= len(self._frames)
            due = deadline if exhausted else self._start + self._next * self._period
            if due >= deadline:
                self._closed.wait(max(0.0, deadline - now))
                return None
            if self._closed.wait(max(0.0, due - now)):
                return None
            now = time.monotonic()

    def close(self) -> None:
        self._closed.set()


def _load_folder(folder: Path) -> list[np.ndarray]:
    from PIL import Image

    if not folder.is_dir():
        raise DeviceNotFound(f"replay folder {folder} does not exist; give a folder of images")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    frames = []
    loaded: dict[bytes, np.ndarray] = {}  # a still scene repeats one file: hold it once
    for path in paths:
        data = path.read_bytes()
        if data not in loaded:
            # Opened by name: Pillow then loads only the decoder for the file's suffix.
            # From bytes it would load all its common ones (BMP, GIF, JPEG, PPM, PNG),
            # about 2.7 MB held for the kiosk's life.
            with Image.open(path) as img:
                loaded[data] = np.asarray(img.convert("L"))
        frames.append(loaded[data])
    return frames
