"""The kiosk's QR decoder: synthetic phone-screen frames, corpus photos, ranking, errors."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image, ImageFilter

from kiosk.decode import Decoder, decode_file, looks_like_token, make_decoder
from kiosk.errors import DecoderError
from refbackend.tokens import kid_for, sign_paycode

DATA = Path(__file__).resolve().parents[1] / "data" / "qr"
CORPUS = sorted(p for p in DATA.iterdir() if p.suffix in {".png", ".webp", ".jpg"})


def paycode_token() -> str:
    key = Ed25519PrivateKey.generate()
    return sign_paycode(
        key,
        kid_for(key.public_key()),
        issuer="https://api.smartum.example",
        jti="pc_0123456789abcdef",
        code="123456789012",
        issued_at=1_760_000_000,
    )


TOKEN = paycode_token()


def qr_image(text: str, scale: int = 4) -> Image.Image:
    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=scale, border=4)
    buf.seek(0)
    return Image.open(buf).convert("L")


def _perspective_coeffs(dst: list[tuple[float, float]], src: list[tuple[float, float]]) -> list:
    rows = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    rhs = np.array([c for point in src for c in point], dtype=float)
    return list(np.linalg.solve(np.array(rows, dtype=float), rhs))


def phone_frame(
    text: str = TOKEN,
    *,
    scale: int = 4,
    angle: float = 0.0,
    warp: float = 0.0,
    blur: float = 0.0,
    contrast: float = 1.0,
    glare: float = 0.0,
    invert: bool = False,
    at: tuple[int, int] = (320, 240),
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
) -> np.ndarray:
    """A 640x480 grey frame with *text* as a phone-screen QR, degraded as asked."""
    rng = np.random.default_rng(seed)
    code = qr_image(text, scale)
    if invert:
        code = Image.eval(code, lambda v: 255 - v)
    if contrast != 1.0:
        code = Image.eval(code, lambda v: int(128 + (v - 128) * contrast))
    if warp:
        w, h = code.size
        d = warp * w
        corners = [(0, 0), (w, 0), (w, h), (0, h)]
        squeezed = [(d, d / 2), (w - d, 0), (w, h), (0, h - d / 2)]
        code = code.transform(
            code.size,
            Image.Transform.PERSPECTIVE,
            _perspective_coeffs(squeezed, corners),
            Image.Resampling.BILINEAR,
            fillcolor=90,
        )
    if angle:
        code = code.rotate(angle, Image.Resampling.BILINEAR, expand=True, fillcolor=90)
    frame = Image.new("L", size, 90)
    frame.paste(code, (at[0] - code.width // 2, at[1] - code.height // 2))
    if blur:
        frame = frame.filter(ImageFilter.GaussianBlur(blur))
    pixels = np.asarray(frame, dtype=np.float32)
    if glare:
        yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
        cx, cy = at[0] + code.width / 5, at[1] - code.height / 5
        pixels = pixels + glare * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 45.0**2))
    pixels = pixels + rng.normal(0, 3, pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module", params=["zxing", "zbar"])
def decoder(request: pytest.FixtureRequest) -> Decoder:
    return make_decoder(request.param)


@pytest.fixture(scope="module")
def zxing() -> Decoder:
    return make_decoder("zxing")


CONDITIONS = {
    "plain": {},
    "blurred": {"blur": 1.2},
    "rotated": {"angle": 23.0},
    "perspective": {"warp": 0.1},
    "low_contrast": {"contrast": 0.25},
    "inverted": {"invert": True},
    "glare": {"glare": 110.0},
    "dark_mode_tilted_blurred": {"invert": True, "angle": -12.0, "blur": 0.8},
}


@pytest.mark.parametrize("condition", CONDITIONS)
def test_phone_screen_token_is_read(decoder: Decoder, condition: str) -> None:
    frame = phone_frame(**CONDITIONS[condition])
    assert decoder.decode(frame) == [TOKEN]


@pytest.mark.parametrize(
    "condition", [{"warp": 0.2}, {"contrast": 0.1}, {"warp": 0.15, "invert": True, "glare": 120.0}]
)
def test_default_decoder_reads_harder_frames(zxing: Decoder, condition: dict) -> None:
    assert zxing.decode(phone_frame(**condition)) == [TOKEN]


def test_empty_frame_gives_nothing(decoder: Decoder) -> None:
    rng = np.random.default_rng(1)
    frame = np.clip(rng.normal(120, 20, (480, 640)), 0, 255).astype(np.uint8)
    assert decoder.decode(frame) == []


def test_y_plane_view_with_stride_is_decoded_in_place(zxing: Decoder) -> None:
    frame = phone_frame()
    yuv = np.zeros((480 * 3 // 2, 704), dtype=np.uint8)  # picamera2 pads rows to a stride
    yuv[:480, :640] = frame
    view = yuv[:480, :640]
    assert not view.flags.c_contiguous
    assert zxing.decode(view) == [TOKEN]


def test_token_is_preferred_over_other_codes(decoder: Decoder) -> None:
    left = phone_frame("https://example.com/menu", at=(150, 240), scale=5)
    right = phone_frame(TOKEN, at=(450, 240), scale=3)
    frame = np.concatenate([left[:, :320], right[:, 320:]], axis=1)
    texts = decoder.decode(frame)
    assert texts[0] == TOKEN
    assert "https://example.com/menu" in texts


def test_bare_paycode_digits_rank_before_urls(zxing: Decoder) -> None:
    left = phone_frame("https://example.com/x", at=(150, 240), scale=6)
    right = phone_frame("123456789012", at=(470, 240), scale=6)
    frame = np.concatenate([left[:, :320], right[:, 320:]], axis=1)
    assert zxing.decode(frame) == ["123456789012", "https://example.com/x"]


def test_token_shape_rule() -> None:
    assert looks_like_token(TOKEN)
    assert looks_like_token("123456789012")
    assert not looks_like_token("12345678901")
    assert not looks_like_token("https://example.com/a.b.c")


@pytest.mark.parametrize("image", CORPUS, ids=lambda p: p.name)
def test_corpus_photo_reads_exactly(zxing: Decoder, image: Path) -> None:
    expected = image.with_suffix(".txt").read_bytes().decode("utf-8")
    assert expected in decode_file(image, zxing)


def test_light_on_dark_corpus_photo_with_zbar() -> None:
    image = DATA / "qrcode-2-qr-inv-1.webp"
    expected = image.with_suffix(".txt").read_bytes().decode("utf-8")
    assert decode_file(image, make_decoder("zbar")) == [expected]


def test_rejects_colour_arrays(zxing: Decoder) -> None:
    with pytest.raises(ValueError, match="2-D uint8"):
        zxing.decode(np.zeros((4, 4, 3), dtype=np.uint8))


def test_unknown_decoder_kind() -> None:
    with pytest.raises(DecoderError, match="unknown decoder 'opencv'"):
        make_decoder("opencv")


def test_unreadable_files_raise_decoder_error(zxing: Decoder, tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(DecoderError, match="not a readable image"):
        decode_file(junk, zxing)
    with pytest.raises(DecoderError, match="no such file"):
        decode_file(tmp_path / "missing.png", zxing)
    with pytest.raises(DecoderError, match="is a directory"):
        decode_file(tmp_path, zxing)


# --- kiosk decode ---------------------------------------------------------------------------


def test_cli_prints_file_and_text_per_code(capsys: pytest.CaptureFixture[str]) -> None:
    from kiosk.cli import main

    images = [DATA / "qrcode-2-31.webp", DATA / "qrcode-2-33.png", DATA / "qrcode-1-17.webp"]
    assert main(["decode", *map(str, images)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{images[0]}: 今度のバージョンでは文章の暗号化ができます。"
    assert out[1] == f"{images[1]}: \\x01\\x10AD:SUB:阿;;"  # control characters escaped
    assert out[2].startswith(f"{images[2]}: Sean Owen\\r\\nsrowen@google.com\\r\\n")
    assert len(out) == 3


@pytest.mark.parametrize("kind", ["zxing", "zbar"])
def test_cli_failures_exit_1_without_traceback(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kiosk.cli import main

    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(blank)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 truncated")
    good = DATA / "qrcode-2-qr-inv-1.webp"
    status = main(["decode", "--decoder", kind, str(good), str(blank), str(broken)])
    captured = capsys.readouterr()
    assert status == 1
    assert captured.out == f"{good}: https://beeline.co/pages/app\n"
    assert f"{blank}: no code found" in captured.err
    assert f"{broken}: not a readable image" in captured.err
    assert "Traceback" not in captured.err


# --- hostile image files ----------------------------------------------------------------------


def _png_header_only_bomb(side: int) -> bytes:
    """A valid PNG header declaring a *side* x *side* 1-bit image, with a few rows of data.

    A few hundred bytes on disk; decoded in full it would take side**2 pixels of memory.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    rows = (b"\x00" + b"\x00" * ((side + 7) // 8)) * 4
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def _hostile_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, the words its one error line must carry)."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only_bomb(30_000))  # 900 Mpx: past Pillow's error limit
    big = tmp_path / "big.png"
    big.write_bytes(_png_header_only_bomb(10_000))  # 100 Mpx: past Pillow's warning limit only
    noise = np.random.default_rng(7).integers(0, 256, (300, 300), dtype=np.uint8)
    whole = io.BytesIO()
    Image.fromarray(noise).save(whole, format="PNG")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    unknown = tmp_path / "notes.png"
    unknown.write_text("this is a shopping list, not an image\n")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    folder = tmp_path / "photos"
    folder.mkdir()
    return {
        "bomb": (bomb, "image too large to decode safely (900,000,000 pixels)"),
        "big": (big, "image too large to decode safely (100,000,000 pixels)"),
        "truncated": (truncated, "not a readable image (image file is truncated)"),
        "unknown": (unknown, "not a readable image (cannot identify image file"),
        "empty": (empty, "not a readable image"),
        "folder": (folder, "is a directory"),
        "missing": (tmp_path / "missing.png", "no such file"),
        "under_a_file": (unknown / "child.png", "not a readable image"),
    }


def test_hostile_files_raise_decoder_error(
    zxing: Decoder, tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    for name, (path, words) in _hostile_files(tmp_path).items():
        with pytest.raises(DecoderError) as caught:
            decode_file(path, zxing)
        assert str(caught.value).startswith(f"{path}: "), name
        assert words in str(caught.value), (name, str(caught.value))
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_cli_hostile_files_give_one_line_each_and_others_are_decoded(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from kiosk.cli import main

    hostile = _hostile_files(tmp_path)
    good = DATA / "qrcode-2-qr-inv-1.webp"
    paths = [str(p) for p, _ in hostile.values()]
    status = main(["decode", paths[0], str(good), *paths[1:]])
    captured = capfd.readouterr()
    assert status == 1
    assert captured.out == f"{good}: https://beeline.co/pages/app\n"
    lines = captured.err.splitlines()
    assert len(lines) == len(hostile), captured.err  # one line per file, nothing else
    for line, (path, words) in zip(lines, hostile.values(), strict=True):
        assert line.startswith(f"kiosk decode: {path}: ") and words in line, line
    assert "Traceback" not in captured.err and "Warning" not in captured.err
