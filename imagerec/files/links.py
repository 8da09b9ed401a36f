"""Putting an existing file at a new place without copying it when the filesystem allows."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def link_file(source: Path, target: Path) -> str:
    """Put ``source`` at ``target`` (parents created, an existing target replaced); returns the link kind used.

    A hard link first: it survives the source's deletion (a dataset deleted while a task reads it). A symlink to
    the real file where hard links cannot cross filesystems, and a copy where neither works."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        target.unlink()  # a retried task writes into the same run folder
    try:
        os.link(source, target)  # follows a symlinked source: the link is to the real image
        return "hardlink"
    except OSError:
        pass
    try:
        os.symlink(source.resolve(), target)
        return "symlink"
    except OSError:
        shutil.copyfile(source, target)
        return "copy"
