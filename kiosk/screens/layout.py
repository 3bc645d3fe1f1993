"""Drawing helpers for the 128x64 panel: the bundled font, text fitting, frames.

A screen is first composed into a :class:`Frame` (a record of every text line,
bar and icon with its pixel box) and then painted. Composing is where text is
measured: a block is drawn in the largest allowed size that fits, wrapped onto
its allowed number of lines, and only as a last resort cut with "…". Tests read
the frame to prove that nothing is drawn outside the panel or cut off.

The font is Terminus (SIL Open Font License, ``fonts/OFL.txt``), a bitmap font
whose strikes are crisp on a 1-bit panel at 12, 16, 18, 20, 24, 28 and 32 px.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from kiosk.screens import icons

WIDTH, HEIGHT = 128, 64
SIZES = (32, 28, 24, 20, 18, 16, 12)
SMALL = 12
ELLIPSIS = "…"
_FONT_DIR = Path(__file__).with_name("fonts")
# Control characters and line/paragraph separators: the text layout refuses some of them
# (LF, CR, NEL, U+2029 ...) and a line break would draw a second line over the next row.
_UNDRAWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@lru_cache(maxsize=32)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """The bundled font at one of ``SIZES``. Raises ValueError for other sizes."""
    if size not in SIZES:
        raise ValueError(f"font size {size} has no bitmap strike; use one of {SIZES}")
    name = "terminus-bold.otb" if bold else "terminus-normal.otb"
    return ImageFont.truetype(str(_FONT_DIR / name), size)


def drawable(text: str) -> str:
    """*text* as it is drawn: control characters and line separators become spaces."""
    return _UNDRAWABLE.sub(" ", text)


@lru_cache(maxsize=256)  # a few screens' words; bounded, so memory stays flat
def text_width(text: str, size: int, bold: bool = False) -> int:
    """Width in pixels of *text* drawn in the bundled font.

    Remembered: word wrap and shrink-to-fit measure the same words and prefixes over
    and over, and every result screen is drawn while the customer waits."""
    if not text:
        return 0
    return int(font(size, bold).getbbox(drawable(text))[2])


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class Block:
    """Text to fit: tried at each of ``sizes`` (largest first) on up to ``max_lines``."""

    text: str
    sizes: tuple[int, ...] = (SMALL,)
    bold: bool = False
    max_lines: int = 1
    align: str = "center"


@dataclass(frozen=True)
class Line:
    """One line of text placed on the panel; ``ink`` 0 draws dark on a lit bar."""

    text: str
    x: int
    y: int
    size: int
    bold: bool = False
    ink: int = 1
    cut: bool = False  # shortened with an ellipsis or dropped lines

    @property
    def box(self) -> Box:
        return Box(self.x, self.y, text_width(self.text, self.size, self.bold), self.size)


@dataclass(frozen=True)
class Icon:
    name: str
    x: int
    y: int
    size: int
    ink: int = 1

    @property
    def box(self) -> Box:
        return Box(self.x, self.y, self.size, self.size)


@dataclass
class Frame:
    """Everything one screen draws, in drawing order: bars, then icons and lines."""

    bars: list[Box] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    icons: list[Icon] = field(default_factory=list)
    rules: list[Box] = field(default_factory=list)  # 1-pixel-high lines (strike, separators)

    def shifted(self, dx: int, dy: int) -> Frame:
        """The same frame moved by (dx, dy) pixels."""

        def mv(b: Box) -> Box:
            return Box(b.x + dx, b.y + dy, b.w, b.h)

        return Frame(
            bars=[mv(b) for b in self.bars],
            lines=[
                Line(ln.text, ln.x + dx, ln.y + dy, ln.size, ln.bold, ln.ink, ln.cut)
                for ln in self.lines
            ],
            icons=[Icon(i.name, i.x + dx, i.y + dy, i.size, i.ink) for i in self.icons],
            rules=[mv(b) for b in self.rules],
        )

    def boxes(self) -> list[Box]:
        return self.bars + [ln.box for ln in self.lines] + [i.box for i in self.icons] + self.rules

    def texts(self) -> list[str]:
        return [ln.text for ln in self.lines]


def paint(frame: Frame) -> Image.Image:
    """Draw *frame* into a new 128x64 mode "1" image."""
    image = Image.new("1", (WIDTH, HEIGHT), 0)
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1"
    for bar in frame.bars:
        draw.rectangle((bar.x, bar.y, bar.x + bar.w - 1, bar.y + bar.h - 1), fill=1)
    for rule in frame.rules:
        draw.rectangle(
            (rule.x, rule.y, rule.x + rule.w - 1, rule.y + rule.h - 1),
            fill=0 if _on_bar(frame, rule) else 1,
        )
    for icon in frame.icons:
        icons.draw(draw, icon.name, icon.x, icon.y, icon.size, icon.ink)
    for line in frame.lines:
        text = drawable(line.text)
        draw.text((line.x, line.y), text, font=font(line.size, line.bold), fill=line.ink)
    return image


def _on_bar(frame: Frame, rule: Box) -> bool:
    return any(b.x <= rule.x < b.x + b.w and b.y <= rule.y < b.y + b.h for b in frame.bars)


def wrap(text: str, size: int, bold: bool, width: int) -> list[str]:
    """Greedy word wrap to *width* pixels; a word too long for a line is split."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if text_width(candidate, size, bold) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while text_width(word, size, bold) > width:
            cut = _longest(partial(_prefix_fits, word, size, bold, width), 1, len(word))
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current or not lines:
        lines.append(current)
    return lines


def ellipsize(text: str, size: int, bold: bool, width: int) -> str:
    """*text* shortened with "…" until it fits *width* pixels."""
    if text_width(text, size, bold) <= width:
        return text
    cut = _longest(
        lambda n: text_width(text[:n].rstrip() + ELLIPSIS, size, bold) <= width, 0, len(text)
    )
    return text[:cut].rstrip() + ELLIPSIS


def _prefix_fits(text: str, size: int, bold: bool, width: int, n: int) -> bool:
    return text_width(text[:n], size, bold) <= width


def _longest(fits: Callable[[int], bool], low: int, high: int) -> int:
    """The largest n in [low, high] for which *fits* holds, else *low*.

    *fits* must hold for every n below one where it holds (a prefix that fits is
    never wider than a longer one), so a binary search finds it in log steps:
    a name of hundreds of characters from the backend must not stall the panel.
    """
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def fit(blocks: list[Block], box: Box) -> list[Line]:
    """Place *blocks* top to bottom in *box*, spread evenly, shrinking to fit.

    The largest block is shrunk first; when every block is at its smallest size
    and the text still does not fit, lines are cut with "…" (``Line.cut``).
    """
    if not blocks:
        return []
    level = [0] * len(blocks)
    while True:
        wrapped = [_wrap_block(b, b.sizes[level[i]], box.w) for i, b in enumerate(blocks)]
        overflowing = [
            i
            for i, b in enumerate(blocks)
            if len(wrapped[i]) > b.max_lines and level[i] < len(b.sizes) - 1
        ]
        if overflowing:
            level[overflowing[0]] += 1
            continue
        used = sum(
            min(len(wrapped[i]), b.max_lines) * b.sizes[level[i]] for i, b in enumerate(blocks)
        )
        if used <= box.h:
            break
        shrinkable = [i for i, b in enumerate(blocks) if level[i] < len(b.sizes) - 1]
        if not shrinkable:
            break
        biggest = max(shrinkable, key=lambda i: (blocks[i].sizes[level[i]], i))
        level[biggest] += 1
    return _place(blocks, [b.sizes[level[i]] for i, b in enumerate(blocks)], wrapped, box)


def _wrap_block(block: Block, size: int, width: int) -> list[str]:
    if block.max_lines == 1 and text_width(block.text, size, block.bold) > width:
        return [block.text, ""]  # counts as two lines: too wide for one
    return balanced_wrap(block.text, size, block.bold, width)


def balanced_wrap(text: str, size: int, bold: bool, width: int) -> list[str]:
    """Wrap like :func:`wrap` into as few lines, but with lines as even as possible."""
    lines = wrap(text, size, bold, width)
    if len(lines) < 2:
        return lines
    widest_word = max(text_width(w, size, bold) for w in text.split(" "))
    low, high = min(widest_word, width), width  # narrowest width, same count, no split words
    while low < high:
        mid = (low + high) // 2
        if len(wrap(text, size, bold, mid)) <= len(lines):
            high = mid
        else:
            low = mid + 1
    return wrap(text, size, bold, high)


def _rows(block: Block, size: int, lines: list[str], width: int) -> list[tuple[str, bool]]:
    if block.max_lines == 1:
        fitted = ellipsize(block.text, size, block.bold, width)
        return [(fitted, fitted != block.text)]
    if len(lines) <= block.max_lines:
        return [(ln, False) for ln in lines]
    head = [(ln, False) for ln in lines[: block.max_lines - 1]]
    rest = " ".join(lines[block.max_lines - 1 :])
    return [*head, (ellipsize(rest, size, block.bold, width), True)]


def _place(blocks: list[Block], sizes: list[int], wrapped: list[list[str]], box: Box) -> list[Line]:
    rows: list[tuple[Block, int, str, bool]] = []
    for block, size, lines in zip(blocks, sizes, wrapped, strict=True):
        rows.extend((block, size, t, c) for t, c in _rows(block, size, lines, box.w))
    while len(rows) > 1 and sum(r[1] for r in rows) > box.h:
        rows.pop()
        block, size, text, _ = rows[-1]
        rows[-1] = (block, size, ellipsize(text + ELLIPSIS, size, block.bold, box.w), True)
    free = box.h - sum(r[1] for r in rows)
    gap, extra = divmod(max(free, 0), len(blocks) + 1)
    y = box.y + gap + extra // 2
    out: list[Line] = []
    previous: Block | None = None
    for block, size, text, cut in rows:
        if previous is not None and block is not previous:
            y += gap
        out.append(Line(text, _align(text, size, block, box), y, size, block.bold, 1, cut))
        y += size
        previous = block
    return out


def _align(text: str, size: int, block: Block, box: Box) -> int:
    width = text_width(text, size, block.bold)
    if block.align == "left":
        return box.x
    if block.align == "right":
        return box.x + box.w - width
    return box.x + (box.w - width) // 2


def header(
    frame: Frame,
    icon: str | None,
    title: str,
    right: str = "",
    *,
    size: int = SMALL,
    right_icon: str | None = None,
) -> int:
    """A lit bar across the top with a dark icon and title; returns the first free row.

    *right* (text, small) or *right_icon* go to the right end when they fit beside
    the title; otherwise they are left out and the title keeps the room.
    """
    bar_h = size + 2 if size == SMALL else size
    text_y = 1 if size == SMALL else 0
    icon_size = bar_h - 4
    frame.bars.append(Box(0, 0, WIDTH, bar_h))
    x = 2
    if icon:
        frame.icons.append(Icon(icon, 2, 2, icon_size, ink=0))
        x = 2 + icon_size + 3
    room = WIDTH - x - 2
    title_w = text_width(title, size, True)
    if right_icon and title_w + 6 + icon_size <= room:
        frame.icons.append(Icon(right_icon, WIDTH - 2 - icon_size, 2, icon_size, ink=0))
    elif right and title_w + 6 + text_width(right, SMALL, True) <= room:
        right_w = text_width(right, SMALL, True)
        frame.lines.append(
            Line(right, WIDTH - 2 - right_w, text_y + (size - SMALL) // 2 + 1, SMALL, True, 0)
        )
    fitted = ellipsize(title, size, True, room)
    frame.lines.append(Line(fitted, x, text_y, size, True, 0, fitted != title))
    return bar_h
