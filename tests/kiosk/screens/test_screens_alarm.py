"""The alarm screen speaks the screen's language, the salvaged journal's counts included."""

from __future__ import annotations

import pytest
from luma.core.device import dummy

from hardware.display import Display
from kiosk import screens, views
from kiosk.screens.pages import compose

SALVAGED = {
    "fi": ("Tallennusvirhe", "Pelastettu 172 riviä, menetetty 3"),
    "sv": ("Lagringsfel", "Räddade 172 rader, förlorade 3"),
    "en": ("Storage error", "Salvaged 172 rows, lost 3"),
}


@pytest.mark.parametrize("lang", screens.LANGUAGES)
def test_a_salvaged_journal_is_told_in_the_screens_language(lang: str) -> None:
    view = views.Alarm("journal", salvage=views.Salvage(172, 3))
    frame = compose(view, lang)
    assert not any(line.cut for line in frame.lines)
    said = " ".join(frame.texts())  # a line too long for the panel wraps onto the next
    fault, salvaged = SALVAGED[lang]
    assert fault in said and salvaged in said, said
    if lang != "en":
        assert "salvaged" not in said.lower() and "lost" not in said, said
    device = dummy(width=screens.WIDTH, height=screens.HEIGHT, mode="1")
    Display(device=device).show(screens.render(view, lang))
    assert device.image.tobytes() == screens.render(view, lang).tobytes()
    assert device.image.getbbox() is not None


@pytest.mark.parametrize("lang", screens.LANGUAGES)
def test_losses_that_could_not_be_counted_are_marked_with_a_plus(lang: str) -> None:
    view = views.Alarm("journal", salvage=views.Salvage(0, 2, more_lost=True))
    said = " ".join(compose(view, lang).texts())
    assert SALVAGED[lang][1].replace("172", "0").replace("3", "2+") in said, said


def test_a_technical_detail_is_shown_as_it_is() -> None:
    said = compose(views.Alarm("scanner", detail="/dev/ttyACM0"), "sv").texts()
    assert "Läsaren saknas" in said and "/dev/ttyACM0" in said
