"""QR decoding of grayscale frames: zxing-cpp by default, pyzbar on request.

Pure functions and objects, no threads: the camera's reader thread calls
``Decoder.decode`` with the Y plane of each frame that changed, ``kiosk decode``
calls ``decode_file``.

Texts come back exactly as encoded (zxing-cpp ``TextMode.Plain``), best first:
texts that look like SmartumPay tokens (JWS shape or 12 digits) before others.

zxing-cpp passes, chosen by measurement on the QR photo corpus (see
``docs/performance-decode.md``):

1. QR only, ``LocalAverage`` binarizer, rotation, inversion and downscaling on.
   Reads most frames; on a 640x480 frame without a code it costs about 0.2 ms.
2. Only when pass 1 found nothing: ``GlobalHistogram`` binariser (better on
   evenly lit, low-contrast photos where local averaging breaks up modules).
3. Only when both found nothing and the image is small (longest side up to
   ``_UPSCALE_MAX_SIDE``): the image scaled up twice, both binarisers; this
   rescues codes whose modules are only one or two pixels wide.

Micro QR is not enabled: SmartumPay never prints it, it found nothing extra in
the corpus and it adds a source of false reads.

pyzbar (``libzbar0``) reads dark-on-light codes only, so it gets a second try
on the inverted image when the first found nothing.
"""

from __future__ import annotations

import logging
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from kiosk.errors import DecoderError
from kiosk.token_shape import looks_like_token

__all__ = [
    "KINDS",
    "Decoder",
    "ZbarDecoder",
    "ZxingDecoder",
    "decode_file",
    "load_gray",
    "looks_like_token",
    "make_decoder",
]

KINDS = ("zxing", "zbar")
_UPSCALE_MAX_SIDE = 400

log = logging.getLogger(__name__)


def _ranked(texts: Iterable[str]) -> list[str]:
    unique = list(dict.fromkeys(texts))
    return sorted(unique, key=lambda t: not looks_like_token(t))  # stable: keeps reader order


def _gray(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim != 2 or pixels.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 grayscale array, got {pixels.dtype} {pixels.shape}")
    return pixels


class Decoder(ABC):
    """Reads QR codes from a 2-D uint8 grayscale image. Safe to call from one thread at a time."""

    kind: str = ""

    def decode(self, pixels: np.ndarray) -> list[str]:
        """Texts of the codes in *pixels*, token-shaped first; ``[]`` if none.

        *pixels* is read in place (a view of a camera Y plane is fine, strides
        included). Raises ValueError for an array that is not 2-D uint8.
        """
        return _ranked(self._read(_gray(pixels)))

    @abstractmethod
    def _read(self, pixels: np.ndarray) -> list[str]: ...


class ZxingDecoder(Decoder):
    """zxing-cpp: QR only, Plain text mode, a fallback pass only when nothing was found."""

    kind = "zxing"

    def __init__(self, zxingcpp: Any) -> None:
        self._z = zxingcpp
        self._formats = zxingcpp.BarcodeFormat.QRCode
        self._binarizers = (zxingcpp.Binarizer.LocalAverage, zxingcpp.Binarizer.GlobalHistogram)

    def _pass(self, pixels: np.ndarray, binarizer: Any) -> list[str]:
        found = self._z.read_barcodes(
            pixels,
            formats=self._formats,
            try_rotate=True,
            try_invert=True,
            try_downscale=True,
            text_mode=self._z.TextMode.Plain,
            binarizer=binarizer,
        )
        return [b.text for b in found if b.valid]

    def _read(self, pixels: np.ndarray) -> list[str]:
        for binarizer in self._binarizers:
            texts = self._pass(pixels, binarizer)
            if texts:
                return texts
        if max(pixels.shape) <= _UPSCALE_MAX_SIDE:
            big = _upscale(pixels, 2)
            for binarizer in self._binarizers:
                texts = self._pass(big, binarizer)
                if texts:
                    return texts
        return []


def _upscale(pixels: np.ndarray, factor: int) -> np.ndarray:
    h, w = pixels.shape
    img = Image.fromarray(np.ascontiguousarray(pixels), mode="L")
    return np.asarray(img.resize((w * factor, h * factor), Image.Resampling.BILINEAR))


class ZbarDecoder(Decoder):
    """pyzbar over libzbar0: QR only; light-on-dark codes are retried on the inverted image."""

    kind = "zbar"

    def __init__(self, decode: Callable[..., Any], qr_symbol: Any) -> None:
        self._decode = decode
        self._symbols = [qr_symbol]

    def _once(self, pixels: np.ndarray) -> list[str]:
        return [_zbar_text(r.data) for r in self._decode(pixels, symbols=self._symbols)]

    def _read(self, pixels: np.ndarray) -> list[str]:
        texts = self._once(pixels)
        if not texts:
            texts = self._once(np.invert(pixels))
        return texts


def _zbar_text(data: bytes) -> str:
    # zbar hands out its own UTF-8 conversion of the payload; fall back for raw bytes.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def make_decoder(kind: str = "zxing") -> Decoder:
    """Build the decoder named by ``[scanner] decoder``: ``zxing`` or ``zbar``.

    Raises DecoderError when the library (or zbar's native ``libzbar0``) is
    missing, or for an unknown kind.
    """
    if kind == "zxing":
        try:
            import zxingcpp
        except ImportError as exc:
            raise DecoderError(
                "zxing-cpp is not installed; install the kiosk with its dependencies "
                '(pip install zxing-cpp) or set [scanner] decoder = "zbar"'
            ) from exc
        return ZxingDecoder(zxingcpp)
    if kind == "zbar":
        try:
            from pyzbar import pyzbar
        except ImportError as exc:  # pyzbar raises ImportError when libzbar0 cannot be loaded
            raise DecoderError(
                f"pyzbar cannot load the zbar library ({exc}); install it with "
                "'apt-get install libzbar0' or set [scanner] decoder = \"zxing\""
            ) from exc
        return ZbarDecoder(pyzbar.decode, pyzbar.ZBarSymbol.QRCODE)
    raise DecoderError(f"unknown decoder {kind!r}; use one of: {', '.join(KINDS)}")


def load_gray(path: Path) -> np.ndarray:
    """Load an image file as a 2-D uint8 grayscale array. Raises DecoderError if unreadable.

    Every failure becomes one DecoderError naming the file: missing, a directory, no
    permission, not an image, truncated, or larger than Pillow's decompression-bomb
    limit (``Image.MAX_IMAGE_PIXELS``; its warning is treated as a refusal too, so a
    huge image is never expanded in memory).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return np.asarray(img.convert("L"))
    except FileNotFoundError as exc:
        raise DecoderError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise DecoderError(f"{path}: is a directory, give image files") from exc
    except PermissionError as exc:
        raise DecoderError(f"{path}: permission denied") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecoderError(
            f"{path}: image too large to decode safely ({_pixels(exc)}); "
            "give a photo or screenshot of the code"
        ) from exc
    except MemoryError as exc:
        raise DecoderError(f"{path}: image too large for the memory available") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise DecoderError(f"{path}: not a readable image ({_first_line(exc)})") from exc
    except Exception as exc:  # a broken file can trip any of Pillow's format plugins
        raise DecoderError(
            f"{path}: not a readable image ({type(exc).__name__}: {_first_line(exc)})"
        ) from exc


def _pixels(exc: BaseException) -> str:
    found = re.search(r"\((\d+) pixels\)", str(exc))
    return f"{int(found.group(1)):,} pixels" if found else "over the pixel limit"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def decode_file(path: Path, decoder: Decoder) -> list[str]:
    """Decode every QR code in the image at *path*; ``[]`` if none.

    Raises DecoderError when the file is missing or not an image Pillow can read.
    """
    return decoder.decode(load_gray(path))
