"""`kiosk screens --out DIR`: every sample, every language, panel-size and upscaled."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from kiosk import screens
from kiosk.cli import main


def test_writes_every_screen_in_every_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["screens", "--out", str(tmp_path), "--scale", "3"]) == 0
    names = {name for name, _ in screens.samples()}
    for lang in screens.LANGUAGES:
        assert {p.stem for p in (tmp_path / lang).glob("*.png")} == names
        assert {p.stem for p in (tmp_path / lang / "x3").glob("*.png")} == names
    with Image.open(tmp_path / "fi" / "checked.png") as small:
        assert small.mode == "1" and small.size == (128, 64)
        expected = screens.render(dict(screens.samples())["checked"], "fi")
        assert small.tobytes() == expected.tobytes()
    with Image.open(tmp_path / "sv" / "x3" / "ready.png") as big:
        assert big.size == (384, 192)
    assert f"wrote {2 * 3 * len(names)} PNG files" in capsys.readouterr().out


def test_one_language_without_upscaling(tmp_path: Path) -> None:
    assert main(["screens", "--out", str(tmp_path), "--scale", "1", "--lang", "en"]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["en"]
    assert not (tmp_path / "en" / "x1").exists()


def test_bad_scale_and_unwritable_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["screens", "--out", str(tmp_path), "--scale", "0"]) == 2
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["screens", "--out", str(blocker)]) == 1
    assert "cannot write screens" in capsys.readouterr().err
