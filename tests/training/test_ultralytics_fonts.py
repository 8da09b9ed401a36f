"""Ultralytics finds its fonts in the data dir and draws text labels without any network attempt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagerec.config import Settings
from imagerec.training import ultralytics_env

# Runs in a fresh interpreter: Ultralytics reads YOLO_CONFIG_DIR once, at import. Every connect and DNS lookup is
# recorded and refused before it loads, since check_font swallows the errors of its download attempt.
CHILD = """
import json, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("network is off in this test")
socket.socket.connect = refuse
socket.getaddrinfo = refuse

import numpy as np
from ultralytics.utils.checks import check_font
from ultralytics.utils.plotting import Annotator

fonts = [str(check_font(name)) for name in ("Arial.ttf", "Arial.Unicode.ttf")]
annotator = Annotator(np.zeros((64, 96, 3), dtype=np.uint8), pil=True)
annotator.text([4, 4], "cat 0.87", txt_color=(255, 255, 255))
print(json.dumps({"fonts": fonts, "drawn_with": str(getattr(annotator.font, "path", None)),
                  "lit_pixels": int((annotator.result() > 0).sum()), "attempts": attempts}))
"""

ENV_KEYS = ("YOLO_CONFIG_DIR", "YOLO_OFFLINE", "YOLO_VERBOSE", "MPLCONFIGDIR", "TORCHINDUCTOR_CACHE_DIR",
            "ORT_DISABLE_TELEMETRY")


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """configure() sets process variables: put them back after the test."""
    for key in ENV_KEYS:
        monkeypatch.setenv(key, os.environ.get(key, "True"))
    settings = Settings(data_dir=tmp_path / "data")
    ultralytics_env.configure(settings)
    return settings


def _font_dir(settings: Settings) -> Path:
    return settings.data_dir / "ultralytics" / "Ultralytics"


def test_fonts_resolve_in_the_data_dir_and_label_text_draws_offline(settings: Settings, tmp_path: Path) -> None:
    env = {**os.environ, "YOLO_CONFIG_DIR": str(settings.data_dir / "ultralytics"), "YOLO_OFFLINE": "1",
           "MPLCONFIGDIR": str(tmp_path / "matplotlib")}
    child = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    seen = json.loads(child.stdout.strip().splitlines()[-1])

    font_dir = _font_dir(settings)
    assert seen["fonts"] == [str(font_dir / "Arial.ttf"), str(font_dir / "Arial.Unicode.ttf")]
    assert seen["drawn_with"] == str(font_dir / "Arial.ttf"), "Annotator fell back to PIL's default font"
    assert seen["lit_pixels"] > 0, "the label drew nothing"
    assert seen["attempts"] == [], "Ultralytics tried the network"


def test_configure_keeps_a_good_font_and_replaces_a_changed_one(settings: Settings) -> None:
    font_dir = _font_dir(settings)
    source = ultralytics_env.bundled_font()
    assert source is not None
    kept = font_dir / "Arial.ttf"
    damaged = font_dir / "Arial.Unicode.ttf"
    kept_inode = kept.stat().st_ino
    damaged.write_bytes(b"not a font")

    ultralytics_env.configure(settings)

    assert kept.stat().st_ino == kept_inode, "an unchanged font was copied again"
    assert damaged.read_bytes() == source.read_bytes()
    assert sorted(path.name for path in font_dir.iterdir() if path.suffix != ".json") == sorted(
        ultralytics_env.FONT_NAMES), "a partial copy was left behind"
