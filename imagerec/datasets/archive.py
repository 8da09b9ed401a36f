"""Safe handling of uploaded zips: bounded streaming to disk, member checks, bounded extraction.

Every member name is checked before anything is written, so a zip that names ``../evil``, an absolute path, a
drive letter, a backslash or a symlink is refused whole. Extraction counts the bytes it actually writes instead
of trusting the sizes in the headers. The caller owns ``dest`` and removes it on failure.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from imagerec.errors import BadRequest, PayloadTooLarge, UnsupportedMedia

CHUNK = 1024 * 1024
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or the end record of an empty zip
SKIPPED_DIRS = {"__MACOSX"}
SKIPPED_FILES = {".DS_Store", "Thumbs.db"}
DRIVE = re.compile(r"^[A-Za-z]:")
LAYOUT_NAMES = {"images", "labels", "train", "val"}


def save_stream(source: BinaryIO, dest: Path, *, max_bytes: int) -> int:
    """Copy ``source`` to ``dest`` in chunks; 413 as soon as it passes ``max_bytes``. Returns the size."""
    written = 0
    with open(dest, "wb") as out:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            if written > max_bytes:
                raise PayloadTooLarge(f"upload is larger than the limit of {max_bytes} bytes")
            out.write(chunk)
    return written


def extract_zip(zip_path: Path, dest: Path, *, max_members: int, max_bytes: int) -> None:
    """Extract ``zip_path`` into ``dest`` (created) after checking every member; see the module docstring."""
    _require_zip_magic(zip_path)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = _checked_members(archive.infolist(), max_members=max_members)
            dest.mkdir(parents=True, exist_ok=True)
            budget = [max_bytes]
            for info, parts in members:
                _extract_member(archive, info, dest.joinpath(*parts), budget)
    except zipfile.BadZipFile as error:
        raise BadRequest(f"the zip is corrupt: {error}") from error


def count_images(zip_path: Path) -> int:
    """Members with an image suffix, read from the zip's directory only (0 for what is not a readable zip)."""
    from imagerec.datasets.layout import is_image_name

    try:
        with zipfile.ZipFile(zip_path) as archive:
            return sum(1 for info in archive.infolist() if not info.is_dir() and is_image_name(info.filename))
    except zipfile.BadZipFile:
        return 0  # extraction then says what is wrong with it


def find_root(folder: Path) -> Path:
    """The folder that holds the dataset: descend through one wrapping top-level folder, if that is all there is."""
    entries = [entry for entry in folder.iterdir() if entry.name not in SKIPPED_DIRS | SKIPPED_FILES]
    if len(entries) == 1 and entries[0].is_dir() and entries[0].name not in LAYOUT_NAMES:
        return entries[0]
    return folder


def _require_zip_magic(zip_path: Path) -> None:
    with open(zip_path, "rb") as file:
        head = file.read(4)
    if head not in ZIP_MAGIC:
        raise UnsupportedMedia("the upload is not a zip file")


def _checked_members(infos: list[zipfile.ZipInfo], *, max_members: int) -> list[tuple[zipfile.ZipInfo, list[str]]]:
    if len(infos) > max_members:
        raise PayloadTooLarge(f"the zip holds {len(infos)} members; at most {max_members} are allowed")
    members = []
    for info in infos:
        parts = _safe_parts(info)
        if parts is not None and not info.is_dir():
            members.append((info, parts))
    return members


def _safe_parts(info: zipfile.ZipInfo) -> list[str] | None:
    """The member's path components, None for members to skip; 400 naming the member when it is unsafe."""
    name = info.filename
    if "\\" in name:
        raise BadRequest(f"zip member '{name}' contains a backslash")
    if name.startswith("/") or DRIVE.match(name):
        raise BadRequest(f"zip member '{name}' has an absolute path")
    parts = [part for part in PurePosixPath(name).parts if part not in ("", ".")]
    if ".." in parts:
        raise BadRequest(f"zip member '{name}' points outside the archive ('..')")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise BadRequest(f"zip member '{name}' is a symbolic link; links are not accepted")
    if info.flag_bits & 0x1:
        raise BadRequest(f"zip member '{name}' is encrypted; encrypted zips are not supported")
    if not parts or parts[0] in SKIPPED_DIRS or parts[-1] in SKIPPED_FILES:
        return None
    return parts


def _extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: list[int]) -> None:
    """Write one member, drawing its bytes from the shared ``budget`` (413 when it runs out)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as source, open(target, "xb") as out:
            while chunk := source.read(CHUNK):
                budget[0] -= len(chunk)
                if budget[0] < 0:
                    raise PayloadTooLarge("the zip unpacks to more than the configured limit")
                out.write(chunk)
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as error:
        raise BadRequest(f"zip member '{info.filename}' clashes with another member of the same name") from error
    except (zlib.error, EOFError, NotImplementedError) as error:
        raise BadRequest(f"zip member '{info.filename}' cannot be unpacked: {error}") from error


def remove_tree(folder: Path) -> None:
    """Remove a work folder; symlinks inside are unlinked, never followed."""
    shutil.rmtree(folder, ignore_errors=True)
