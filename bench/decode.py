"""Decode benchmarks: idle frames, phone-screen QR codes, inverted codes, the photo corpus, CPU.

    python bench/decode.py [--corpus DIR] [--out FILE] [--cpu-seconds S]

Every figure is measured in this one run on this machine, over the same frames
for the kiosk and its baselines, and written as a markdown table to --out
(default docs/performance-decode.md).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pyzbar import pyzbar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import counter_scene, cpu_model, median_ms, phone_frames, qr_version

from hardware.camera import CameraReader, IdleGate, ReplaySource
from kiosk.decode import load_gray, make_decoder
from refbackend.tokens import kid_for, sign_paycode

ROOT = Path(__file__).resolve().parents[1]
QR = [pyzbar.ZBarSymbol.QRCODE]


@dataclass
class Row:
    figure: str
    target: str
    measured: str
    baseline: str
    ratio: str
    ok: bool | None  # None: reported for information, no target


def pyzbar_texts(pixels: np.ndarray) -> list[str]:
    return [r.data.decode("utf-8", "replace") for r in pyzbar.decode(pixels, symbols=QR)]


def plain_zxing_texts(pixels: np.ndarray) -> list[str]:
    return [b.text for b in zxingcpp.read_barcodes(pixels, text_mode=zxingcpp.TextMode.Plain)]


def paycode() -> str:
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # same token every run
    return sign_paycode(
        key,
        kid_for(key.public_key()),
        issuer="https://api.smartum.fi",
        jti="pc_0123456789abcdef",
        code="123456789012",
        issued_at=1_760_000_000,
    )


def bench_idle(rows: list[Row]) -> None:
    frames = [counter_scene(seed) for seed in range(40)]
    gate = IdleGate(threshold=4.0, refresh=1e9)
    gate.changed(frames[0], at=0.0)
    idle_ms, verdicts = median_ms(lambda f: gate.changed(f, at=1.0), frames[1:], repeat=25)
    assert not any(verdicts), "the idle gate saw a change in a still scene"
    zbar_ms, _ = median_ms(pyzbar_texts, frames[:20])
    kiosk = make_decoder("zxing")
    full_ms, _ = median_ms(kiosk.decode, frames[:20])
    ratio = zbar_ms / idle_ms
    rows.append(
        Row(
            "idle 640x480 frame, per-frame cost (reader's idle path)",
            "<= 1 ms and >= 10x cheaper than pyzbar",
            f"{idle_ms:.3f} ms",
            f"pyzbar full frame {zbar_ms:.2f} ms (kiosk full decode {full_ms:.2f} ms)",
            f"{ratio:.0f}x",
            idle_ms <= 1.0 and ratio >= 10,
        )
    )


def bench_phone(rows: list[Row], token: str) -> None:
    frames = phone_frames(token, 24)
    kiosk = make_decoder("zxing")
    k_ms, k_res = median_ms(kiosk.decode, frames, repeat=3)
    z_ms, z_res = median_ms(pyzbar_texts, frames)
    k_rate = sum(token in r for r in k_res) / len(frames)
    z_rate = sum(token in r for r in z_res) / len(frames)
    ratio = z_ms / k_ms
    rows.append(
        Row(
            f"phone QR (v{qr_version(token)}, {len(token)}-char JWS, tilt/blur/glare), "
            f"{len(frames)} frames",
            ">= 4x faster than pyzbar",
            f"{k_ms:.2f} ms, read {k_rate:.0%}",
            f"pyzbar {z_ms:.2f} ms, read {z_rate:.0%}",
            f"{ratio:.1f}x",
            ratio >= 4 and k_rate == 1.0,
        )
    )
    inverted = phone_frames(token, 24, invert=True)
    plain_rate = sum(token in pyzbar_texts(f) for f in inverted) / len(inverted)
    for kind in ("zxing", "zbar"):
        decoder = make_decoder(kind)
        ms, res = median_ms(decoder.decode, inverted)
        rate = sum(token in r for r in res) / len(inverted)
        normal = sum(token in decoder.decode(f) for f in frames) / len(frames)
        if kind == "zxing":
            target, ok = "100% read", rate == 1.0
        else:  # the selectable backend: reported for information, the target is the default's
            target, ok = "informational (selectable backend)", None
        rows.append(
            Row(
                f"inverted (dark-mode) phone QR, same {len(inverted)} frames, "
                f"kiosk decoder `{kind}`",
                target,
                f"{rate:.0%} ({ms:.2f} ms median); normal polarity {normal:.0%}",
                f"plain pyzbar on inverted {plain_rate:.0%}",
                "",
                ok,
            )
        )


def bench_corpus(rows: list[Row], corpus: Path) -> None:
    images = sorted(p for p in corpus.iterdir() if p.suffix.lower() in {".png", ".jpg", ".webp"})
    items = [(load_gray(p), p.with_suffix(".txt").read_bytes().decode("utf-8")) for p in images]
    results = {}
    kiosk = make_decoder("zxing")
    zbar = make_decoder("zbar")
    for name, fn in (
        ("kiosk (zxing)", kiosk.decode),
        ("zxingcpp.read_barcodes", plain_zxing_texts),
        ("pyzbar", pyzbar_texts),
        ("kiosk (zbar)", zbar.decode),
    ):
        ms, res = median_ms(fn, [pixels for pixels, _ in items], repeat=3)
        hits = sum(exp in got for (_, exp), got in zip(items, res, strict=True))
        results[name] = (hits, ms)
    k_hits, k_ms = results["kiosk (zxing)"]
    p_hits, _ = results["zxingcpp.read_barcodes"]
    n = len(items)
    rows.append(
        Row(
            f"corpus decode rate ({n} photos, exact text)",
            ">= plain read_barcodes, far above pyzbar",
            f"{k_hits}/{n} ({k_hits / n:.0%}), {k_ms:.2f} ms median",
            "; ".join(
                f"{name} {h}/{n} ({h / n:.0%}), {ms:.2f} ms"
                for name, (h, ms) in results.items()
                if name != "kiosk (zxing)"
            ),
            f"{k_hits - p_hits:+d} vs plain",
            k_hits >= p_hits and k_hits > results["pyzbar"][0],
        )
    )


def bench_binarizers(rows: list[Row], corpus: Path) -> None:
    """Single-pass corpus rates per binariser and format set: why the decoder's passes are so."""
    images = sorted(p for p in corpus.iterdir() if p.suffix.lower() in {".png", ".jpg", ".webp"})
    items = [(load_gray(p), p.with_suffix(".txt").read_bytes().decode("utf-8")) for p in images]
    qr = zxingcpp.BarcodeFormat.QRCode
    with_micro = zxingcpp.barcode_formats_from_str("QRCode,MicroQRCode")
    for binarizer in zxingcpp.Binarizer.__members__.values():
        for label, formats in (("QR", qr), ("QR+MicroQR", with_micro)):

            def one_pass(pixels: np.ndarray, b: object = binarizer, f: object = formats) -> list:
                found = zxingcpp.read_barcodes(
                    pixels, formats=f, binarizer=b, text_mode=zxingcpp.TextMode.Plain
                )
                return [x.text for x in found]

            ms, res = median_ms(one_pass, [pixels for pixels, _ in items])
            hits = sum(exp in got for (_, exp), got in zip(items, res, strict=True))
            rows.append(
                Row(
                    f"corpus, one zxing pass: {binarizer.name}, {label}",
                    "informational (pass choice)",
                    f"{hits}/{len(items)}, {ms:.2f} ms median",
                    "",
                    "",
                    None,
                )
            )


def bench_cpu(rows: list[Row], seconds: float) -> None:
    frames = [counter_scene(seed) for seed in range(10)]
    source = ReplaySource(frames, fps=10.0, loop=True)
    reader = CameraReader(source, make_decoder("zxing"), lambda event: None, idle_threshold=4.0)
    reader.start()
    time.sleep(1.0)  # settle: first frame is decoded
    cpu0, wall0, seen0 = time.process_time(), time.monotonic(), reader.frames_seen
    time.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    seen = reader.frames_seen - seen0
    reader.stop()
    source.close()
    share = cpu / wall
    rows.append(
        Row(
            f"CPU at 10 fps idle (reader over replayed still frames, {wall:.0f} s)",
            "< 5% of one core",
            f"{share:.2%} ({seen / wall:.1f} frames/s, {reader.frames_decoded} decoded in total)",
            "",
            "",
            share < 0.05,
        )
    )


_RSS_PROBE = """
import resource, time, numpy as np
from hardware.camera import CameraReader, ReplaySource
from kiosk.decode import make_decoder
frames = [np.full((480, 640), 100, np.uint8)]
reader = CameraReader(ReplaySource(frames, fps=10.0, loop=True), make_decoder("zxing"), print)
reader.start(); time.sleep(1.0); reader.stop()
print([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")][0])
"""


def bench_rss(rows: list[Row]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    rss_mb = int(out.stdout.split()[-1]) / 1024
    rows.append(
        Row(
            "RSS of the camera path alone (decoder + reader + replay, own process)",
            "part of the camera `kiosk run` <= 80 MB",
            f"{rss_mb:.1f} MB",
            "",
            "",
            rss_mb <= 80,
        )
    )


def write_table(rows: list[Row], out: Path, corpus: Path) -> str:
    lines = [
        "## Decoding and camera",
        "",
        f"Measured by `python bench/decode.py` on {time.strftime('%Y-%m-%d')} "
        f"(Python {sys.version.split()[0]}, numpy {np.__version__}, "
        f"zxing-cpp {version('zxing-cpp')}, pyzbar {version('pyzbar')}, "
        f"{cpu_model()}, {os.cpu_count()} cores). Corpus: `{corpus}`. "
        "Times are wall-clock medians per frame or image; "
        "all ratios come from the same run over the same frames.",
        "",
        "| figure | target | measured | baseline | ratio | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = "–" if r.ok is None else "yes" if r.ok else "NO"
        lines.append(
            f"| {r.figure} | {r.target} | {r.measured} | {r.baseline} | {r.ratio} | {met} |"
        )
    lines += [
        "",
        "- Kiosk decoder: zxing-cpp, QR only, `LocalAverage` binariser with rotation, inversion "
        "and downscaling; only if that finds nothing, `GlobalHistogram`, then (images up to "
        "400 px) a 2x upscale. Plain baseline: `zxingcpp.read_barcodes(img, "
        "text_mode=TextMode.Plain)` with its defaults (all formats).",
        "- pyzbar baseline: `pyzbar.decode(img, symbols=[QRCODE])` on the same array; the "
        "kiosk's `zbar` decoder adds a second try on the inverted image.",
        "- Micro QR adds nothing on the corpus (see the one-pass rows) and SmartumPay never "
        "uses it, so it is off. `LocalAverage` reads the most in one pass; `GlobalHistogram` "
        "rescues some of the rest, so it runs second, only when the first found nothing.",
        "- Idle path: 4x4 block mean of every 4th pixel (40x30 thumbnail) compared with the "
        "last decoded frame; still frames are decoded again once a second.",
        "",
    ]
    text = "\n".join(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus" / "qr")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance-decode.md")
    parser.add_argument("--cpu-seconds", type=float, default=10.0)
    args = parser.parse_args()
    if not args.corpus.is_dir():
        print(f"corpus folder {args.corpus} not found; pass --corpus DIR", file=sys.stderr)
        return 2
    rows: list[Row] = []
    token = paycode()
    bench_idle(rows)
    bench_phone(rows, token)
    bench_corpus(rows, args.corpus)
    bench_binarizers(rows, args.corpus)
    bench_cpu(rows, args.cpu_seconds)
    bench_rss(rows)
    print(write_table(rows, args.out, args.corpus))
    print(
        f"bench process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
