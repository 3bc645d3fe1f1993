"""Small pictograms drawn with lines and rectangles, crisp on a 1-bit panel.

Each icon fits the square (x, y, size, size); ``ink`` 1 lights pixels, 0 darkens
them (for icons on a lit bar). Unknown names raise KeyError.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import ImageDraw

_Drawer = Callable[[ImageDraw.ImageDraw, int, int, int, int], None]


def _check(d: ImageDraw.ImageDraw, x: int, y: int, s: int, ink: int) -> None:
    w = max(1, s // 5)
    d.line((x, y + s * 5 // 10, x + s * 4 // 10, y + s - 2, x + s - 1, y + 1), fill=ink, width=w)


def _cross(d: ImageDraw.ImageDraw, x: int, y: int, s: int, ink: int) -> None:
    w = max(1, s // 5)
    d.line((x + 1, y + 1, x + s - 2, y + s - 2), fill=ink, width=w)
    d.line((x + 1, y + s - 2, x + s - 2, y + 1), fill=ink, width=w)


def _alert(d: ImageDraw.ImageDraw, x: int, y: int, s: int, ink: int) -> None:
    mid = x + s // 2
    d.polygon((mid, y, x + s - 1, y + s - 1, x, y + s - 1), outline=ink, fill=ink)
    dark = 1 - ink
    d.line((mid, y + s * 3 // 10, mid, y + s * 7 // 10), fill=dark, width=max(1, s // 8))
    d.point((mid, y + s - 3), fill=dark)


def _clock(d: ImageDraw.ImageDraw, x: int, y: int, s: int, ink: int) -> None:
    d.ellipse((x, y, x + s - 1, y + s - 1), outline=ink)
    c = s // 2
    d.line((x + c, y + 2, x + c, y + c), fill=ink)
    d.line((x + c, y + c, x + s - 3, y + c), fill=ink)


def _offline(d: ImageDraw.ImageDraw, x: int, y: int, s: int, ink: int) -> None:
    # three empty signal bars with a small cross: "no network"
    bar_w = 3
    left = x + s - 3 * bar_w - 2
    for n in range(3):
        top = y + s - 1 - (n + 1) * (s - 1) // 3
        d.rectangle((left, top, left + bar_w - 1, y + s - 1), outline=ink)
        left += bar_w + 1
    c = max(3, s // 3)
    d.line((x, y, x + c - 1, y + c - 1), fill=ink)
    d.line((x, y + c - 1, x + c - 1, y), fill=ink)


def _upload(d: ImageDraw.ImageDraw, x: int, y: int, s: int, ink: int) -> None:
    mid = x + s // 2
    d.line((mid, y + 1, mid, y + s - 3), fill=ink)
    d.line((mid - s // 3, y + 1 + s // 3, mid, y + 1, mid + s // 3, y + 1 + s // 3), fill=ink)
    d.line((x + 1, y + s - 1, x + s - 2, y + s - 1), fill=ink)


def _hourglass(d: ImageDraw.ImageDraw, x: int, y: int, s: int, ink: int) -> None:
    d.line((x + 1, y, x + s - 2, y), fill=ink, width=2)
    d.line((x + 1, y + s - 1, x + s - 2, y + s - 1), fill=ink, width=2)
    d.polygon((x + 2, y + 1, x + s - 3, y + 1, x + s // 2, y + s // 2), outline=ink)
    d.polygon((x + s // 2, y + s // 2, x + s - 3, y + s - 2, x + 2, y + s - 2), fill=ink)


def _qr_module(px: int, py: int) -> bool:
    """A fixed, random-looking module pattern; empty around the finder squares."""
    if (px < 8 and py < 8) or (px > 16 and py < 8) or (px < 8 and py > 16):
        return False
    if px == 6 or py == 6:  # timing patterns
        return (px + py) % 2 == 0
    return (px * 31 + py * 17 + px * py * 7) % 11 < 5


def _qr(d: ImageDraw.ImageDraw, x: int, y: int, s: int, ink: int) -> None:
    m = max(1, s // 25)  # module size; the icon is 25 modules wide
    n = 25 * m

    def finder(fx: int, fy: int) -> None:
        d.rectangle((fx, fy, fx + 7 * m - 1, fy + 7 * m - 1), fill=ink)
        d.rectangle((fx + m, fy + m, fx + 6 * m - 1, fy + 6 * m - 1), fill=1 - ink)
        d.rectangle((fx + 2 * m, fy + 2 * m, fx + 5 * m - 1, fy + 5 * m - 1), fill=ink)

    finder(x, y)
    finder(x + n - 7 * m, y)
    finder(x, y + n - 7 * m)
    for py in range(25):
        for px in range(25):
            if _qr_module(px, py):
                left, top = x + px * m, y + py * m
                d.rectangle((left, top, left + m - 1, top + m - 1), fill=ink)


_DRAWERS: dict[str, _Drawer] = {
    "check": _check,
    "cross": _cross,
    "alert": _alert,
    "clock": _clock,
    "offline": _offline,
    "upload": _upload,
    "hourglass": _hourglass,
    "qr": _qr,
}
NAMES = tuple(_DRAWERS)


def draw(d: ImageDraw.ImageDraw, name: str, x: int, y: int, size: int, ink: int = 1) -> None:
    """Draw icon *name* into the square at (x, y). Raises KeyError for unknown names."""
    _DRAWERS[name](d, x, y, size, ink)
