"""Golden images: every sample screen in every language, compared pixel for pixel.

The references live in ``tests/kiosk/screens/golden/<lang>/<name>.png``. After an
intended change of a screen, regenerate them and look at the difference before
committing::

    KIOSK_UPDATE_GOLDEN=1 .venv/bin/pytest tests/kiosk/screens/test_screens_golden.py

(``kiosk screens --out DIR`` writes the same images with upscaled copies.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from kiosk import screens

GOLDEN = Path(__file__).with_name("golden")
UPDATE = os.environ.get("KIOSK_UPDATE_GOLDEN") == "1"
CASES = [(name, lang) for name, _ in screens.samples() for lang in screens.LANGUAGES]
VIEWS = dict(screens.samples())


@pytest.mark.parametrize(("name", "lang"), CASES, ids=[f"{lang}-{name}" for name, lang in CASES])
def test_screen_matches_golden_image(name: str, lang: str) -> None:
    image = screens.render(VIEWS[name], lang)
    path = GOLDEN / lang / f"{name}.png"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
    assert path.exists(), f"no golden image {path}; run with KIOSK_UPDATE_GOLDEN=1"
    with Image.open(path) as stored:
        reference = stored.convert("1")
    assert image.mode == "1" and image.size == (128, 64)
    diff = ImageChops.difference(image.convert("L"), reference.convert("L")).getbbox()
    assert diff is None, f"{lang}/{name} differs from its golden image inside {diff}"


def test_every_golden_image_belongs_to_a_sample() -> None:
    stored = {(p.stem, p.parent.name) for p in GOLDEN.glob("*/*.png")}
    assert stored == set(CASES)
