"""Ultralytics and the libraries under it run offline, with their settings, caches and state inside the data dir.

Call before anything imports ultralytics, matplotlib or onnxruntime: they read their variables when they load,
and ONNX Runtime keeps its telemetry files whatever is set after its import (``disable_telemetry_events()``
included). Left alone, they write outside the data dir:

- Ultralytics: ``settings.json`` (and any font it fetches) in ``~/.config/Ultralytics``;
- matplotlib (Ultralytics' plots in a training): a font cache in ``~/.cache/matplotlib``, ``~/.config/matplotlib``;
- torch: an inductor cache folder, ``$TMPDIR/torchinductor_<user>``, when a model first runs (training, predict);
- ONNX Runtime (annotation on a CPU): its 1DS telemetry, on by default in the official wheels, keeps a device id
  and an event database (model hashes, the Python path) in ``~/.cache/Microsoft/DeveloperTools/.onnxruntime``,
  a session file in ``$TMPDIR``, and uploads to Microsoft. ``ORT_DISABLE_TELEMETRY=1`` turns all of it off.

Fonts: ``check_font`` wants Arial in ``$YOLO_CONFIG_DIR/Ultralytics`` and, ignoring ``YOLO_OFFLINE``, goes online
for it when missing, so matplotlib's DejaVu Sans is copied there under each name it asks for.
"""

from __future__ import annotations

import filecmp
import functools
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from imagerec.config import Settings

# Every name Ultralytics passes to check_font: Annotator's default, and its pick for non-ASCII class names.
FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")


def configure(settings: Settings) -> None:
    config_dir = settings.data_dir / "ultralytics"
    config_dir.mkdir(parents=True, exist_ok=True)
    place_fonts(config_dir / "Ultralytics")  # Ultralytics' USER_CONFIG_DIR is this sub folder of YOLO_CONFIG_DIR
    cache_dir = settings.data_dir / "cache"
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_VERBOSE", "True")
    os.environ["MPLCONFIGDIR"] = str(cache_dir / "matplotlib")  # its config and its cache; made on first use
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir / "torchinductor")
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"

    from ultralytics.utils import SETTINGS

    SETTINGS.update({"sync": False, "runs_dir": str(settings.data_dir / "runs")})


@functools.cache
def bundled_font() -> Path | None:
    """matplotlib's DejaVu Sans, found without importing matplotlib (it reads MPLCONFIGDIR when it loads)."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    font = Path(spec.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    return font if font.is_file() else None


def place_fonts(font_dir: Path) -> None:
    source = bundled_font()
    if source is None:  # without matplotlib Ultralytics cannot plot anyway; Annotator falls back to PIL's font
        return
    font_dir.mkdir(parents=True, exist_ok=True)
    for name in FONT_NAMES:
        target = font_dir / name
        if not (target.is_file() and filecmp.cmp(source, target, shallow=False)):
            _copy_atomically(source, target)


def _copy_atomically(source: Path, target: Path) -> None:
    # Child processes configure concurrently: a reader must never see half a font. Not ``*.ttf`` while partial,
    # since Ultralytics registers every ``*.ttf`` in its folder with matplotlib.
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
