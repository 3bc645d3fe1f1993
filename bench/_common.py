"""Shared helpers for the benchmarks: synthetic camera frames and timing."""

from __future__ import annotations

import io
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import segno
from PIL import Image, ImageFilter

FRAME_SIZE = (640, 480)


def counter_scene(seed: int, noise: float = 3.0) -> np.ndarray:
    """An empty counter seen by the camera: gradient, a few objects, fresh sensor noise."""
    rng = np.random.default_rng(seed)
    w, h = FRAME_SIZE
    base = np.linspace(70, 180, w, dtype=np.float32)[None, :] + np.linspace(0, 30, h)[:, None]
    base[300:420, 80:260] = 45  # card terminal
    base[60:140, 420:600] = 215  # price list
    base[80:90, 440:580] = 30
    base[100:110, 440:540] = 30
    texture = np.random.default_rng(999).normal(0, 6, (h, w))  # wood grain: same every frame
    return np.clip(base + texture + rng.normal(0, noise, (h, w)), 0, 255).astype(np.uint8)


def qr_image(text: str, scale: int) -> Image.Image:
    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=scale, border=4)
    buf.seek(0)
    return Image.open(buf).convert("L")


def qr_version(text: str) -> int:
    return int(segno.make(text, error="m").version)


def _perspective(dst: list[tuple[float, float]], src: list[tuple[float, float]]) -> list[float]:
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    return [float(c) for c in np.linalg.solve(np.array(rows, float), np.array(rhs, float))]


def phone_frame(
    text: str,
    *,
    seed: int,
    scale: int = 4,
    angle: float = 0.0,
    warp: float = 0.0,
    blur: float = 0.0,
    glare: float = 0.0,
    invert: bool = False,
) -> np.ndarray:
    """A 640x480 frame of a phone held over the counter showing *text* as a QR code."""
    code = qr_image(text, scale)
    if invert:
        code = Image.eval(code, lambda v: 255 - v)
    code = Image.eval(code, lambda v: int(25 + v * 0.85))  # a screen is never pure black/white
    if warp:
        w, h = code.size
        d = warp * w
        square = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
        tilted = [(d, d / 2), (w - d, 0.0), (w, h), (0.0, h - d / 2)]
        code = code.transform(
            code.size,
            Image.Transform.PERSPECTIVE,
            _perspective(tilted, square),
            Image.Resampling.BILINEAR,
            fillcolor=20,
        )
    if angle:
        code = code.rotate(angle, Image.Resampling.BILINEAR, expand=True, fillcolor=20)
    frame = Image.fromarray(counter_scene(seed))
    cx, cy = FRAME_SIZE[0] // 2, FRAME_SIZE[1] // 2
    frame.paste(code, (cx - code.width // 2, cy - code.height // 2))
    if blur:
        frame = frame.filter(ImageFilter.GaussianBlur(blur))
    pixels = np.asarray(frame, dtype=np.float32)
    if glare:
        yy, xx = np.mgrid[0 : FRAME_SIZE[1], 0 : FRAME_SIZE[0]]
        gx, gy = cx + code.width / 5, cy - code.height / 5
        pixels = pixels + glare * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * 45.0**2))
    rng = np.random.default_rng(seed + 1000)
    return np.clip(pixels + rng.normal(0, 3, pixels.shape), 0, 255).astype(np.uint8)


def phone_frames(text: str, count: int, *, invert: bool = False) -> list[np.ndarray]:
    """*count* varied phone frames (tilt, perspective, blur, glare), reproducible."""
    rng = np.random.default_rng(7)
    frames = []
    for i in range(count):
        frames.append(
            phone_frame(
                text,
                seed=i,
                scale=int(rng.integers(3, 5)),
                angle=float(rng.uniform(-25, 25)),
                warp=float(rng.uniform(0, 0.1)),
                blur=float(rng.uniform(0.3, 1.1)),
                glare=float(rng.uniform(0, 110)),
                invert=invert,
            )
        )
    return frames


def median_ms(fn: Callable[[Any], Any], items: list[Any], repeat: int = 1) -> tuple[float, list]:
    """Median wall time of fn(item) in ms over all items (each run *repeat* times) and results."""
    times, results = [], []
    for item in items:
        for _ in range(repeat):
            started = time.perf_counter()
            result = fn(item)
            times.append(time.perf_counter() - started)
        results.append(result)
    return statistics.median(times) * 1000, results


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (x86 "model name", Arm "Model")."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
