"""`kiosk demo`: the scripted counter session runs end to end and saves its screens."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from kiosk.cli import main


@pytest.mark.timeout(120)
def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "screens"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Demo finished" in text and "EXPECTED" not in text
    pngs = sorted(p for p in out.glob("*.png") if not p.name.endswith("-x4.png"))
    assert len(pngs) >= 8
    names = {p.stem.split("-", 1)[1] for p in pngs}
    assert {"checked", "already_checked", "checked_offline", "charged", "cancelled"} <= names
    assert "check_amount" in names
    assert "day_report" in names and "-> day_report" in text
    (line,) = [ln for ln in text.splitlines() if "Receipt 60,00 EUR" in ln]
    assert "-> check_amount" in line and "nearest Klassinen hieronta 60 min, -5.00 EUR" in line
    with Image.open(pngs[0]) as image:
        assert image.size == (128, 64)
