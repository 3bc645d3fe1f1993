"""What the 128x64 OLED shows: pure rendering of :mod:`kiosk.views` into 1-bit images.

``render(view, lang)`` never touches a device; ``hardware.display.Display.show``
is the only writer to the panel. Finnish is the default language; Swedish and
English are complete. ``samples()`` names one view for every screen and variant;
`kiosk screens`, the golden-image tests and ``docs/screens.png`` all use it.

    image = screens.render(views.Ready(now=now), lang="fi")
    display.show(image)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from PIL import Image

from kiosk import views
from kiosk.screens import sheet
from kiosk.screens.i18n import LANGUAGES, format_amount, format_time
from kiosk.screens.layout import HEIGHT, WIDTH, Frame, paint
from kiosk.screens.pages import compose, ready_shift
from kiosk.screens.samples import samples
from kiosk.screens.sheet import to_terminal

__all__ = [
    "HEIGHT",
    "LANGUAGES",
    "WIDTH",
    "compose",
    "contact_sheet",
    "format_amount",
    "format_time",
    "ready_shift",
    "render",
    "samples",
    "to_terminal",
]


def render(view: views.View, lang: str = "fi") -> Image.Image:
    """The 128x64 mode "1" image of *view* in *lang* (one of ``LANGUAGES``).

    Pure and deterministic. Raises ValueError for an unsupported language and
    TypeError for something that is not a view.
    """
    frame: Frame = compose(view, lang)
    return paint(frame)


def contact_sheet(
    *,
    langs: Sequence[str] = LANGUAGES,
    scale: int = 2,
    per_row: int = 2,
    now: datetime | None = None,
) -> Image.Image:
    """Every sample in every language of *langs* on one labelled, upscaled image."""
    cells = [(name, [(lang, render(view, lang)) for lang in langs]) for name, view in samples(now)]
    return sheet.contact_sheet(cells, scale=scale, per_row=per_row)
