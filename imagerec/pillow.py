"""Pillow's own ``Image.open``, whatever Ultralytics did to it.

Importing Ultralytics replaces ``PIL.Image.open`` process-wide with a wrapper that, on a file Pillow cannot
identify, tries to install a HEIF plugin and then fails with ``ModuleNotFoundError``; code that classifies user
files (not an image → 415, corrupt → 400) must call the original.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from PIL import Image


def pillow_open() -> Callable[..., Image.Image]:
    current = Image.open
    if current.__module__ == Image.__name__:
        return current
    return getattr(sys.modules.get(current.__module__), "_image_open", current)
