"""Confinement of server paths to the configured allowed roots, and the file browser built on it.

Every filesystem path a user names goes through ``resolve_allowed`` before anything touches it: the path is
resolved (symlinks included) and must then lie inside one resolved root, compared by path components so that
``/data-evil`` is not inside ``/data``. Containment is checked before existence, so a path outside the roots
is refused the same way whether or not it exists, and no error message ever names an outside path.
"""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

from imagerec.errors import BadRequest, Forbidden, NotFound
from imagerec.files.schemas import DirectoryListing, EntryType, FileEntry

MAX_PATH_CHARS = 4096  # PATH_MAX on Linux; longer input is refused before touching the filesystem
LISTING_LIMIT = 1000  # entries returned per folder; the rest are reported as ``truncated``


def require_roots(roots: list[Path]) -> list[Path]:
    if not roots:
        raise Forbidden("no allowed roots are configured on this server (set IMAGEREC_ALLOWED_ROOTS)")
    return roots


def containing_root(roots: list[Path], real_path: Path) -> Path | None:
    for root in roots:
        if real_path == root or root in real_path.parents:
            return root
    return None


def resolve_allowed(roots: list[Path], raw_path: str) -> Path:
    """The real path of ``raw_path`` if it exists inside an allowed root; 403/404 otherwise, revealing nothing.

    A relative path is taken relative to the first root. 400 for a NUL byte or an over-long path; 403 when the
    path lies inside a root but cannot be read for lack of permission.
    """
    require_roots(roots)
    if "\x00" in raw_path:
        raise BadRequest("path contains a NUL byte")
    if len(raw_path) > MAX_PATH_CHARS:
        raise BadRequest(f"path is longer than {MAX_PATH_CHARS} characters")
    candidate = Path(raw_path)
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    try:
        real = Path(os.path.realpath(candidate))
    except (OSError, ValueError):
        raise NotFound("no such file or folder under the allowed roots") from None
    if containing_root(roots, real) is None:
        raise Forbidden("path is outside the allowed roots")
    if _stat_inside(real) is None:
        raise NotFound("no such file or folder under the allowed roots")
    return real


def _stat_inside(real: Path) -> os.stat_result | None:
    """``stat`` of a path already known to be inside a root: None when missing, 403 when unreadable."""
    try:
        return real.stat()
    except PermissionError:
        raise Forbidden("permission denied on this path") from None
    except (OSError, ValueError):
        return None


# -- the file browser ---------------------------------------------------------------------------------------
def browse(*, roots: list[Path], raw_path: str | None, limit: int = LISTING_LIMIT) -> DirectoryListing:
    """List the allowed roots (no path), a folder inside them, or a single file (the listing then holds just
    that file, with ``parent`` its folder). See ``imagerec.files.router`` for the rules on what is shown."""
    require_roots(roots)
    if not raw_path:
        return _list_roots(roots)
    real = resolve_allowed(roots, raw_path)
    if not _utf8(str(real)):
        raise BadRequest("path cannot be represented as UTF-8")
    parent = None if real in roots else str(real.parent)
    if real.is_dir():
        entries, truncated = _list_folder(roots, real, limit)
    else:
        entries, truncated = [_single_file(real)], False
    return DirectoryListing(path=str(real), parent=parent, entries=entries, truncated=truncated)


def _list_roots(roots: list[Path]) -> DirectoryListing:
    entries = []
    for root in dict.fromkeys(roots):  # keep order, drop duplicates
        entry = _entry(root, name=root.name or str(root), shown_path=root)
        if entry is not None and entry.type is EntryType.dir:
            entries.append(entry)
    return DirectoryListing(path=None, parent=None, entries=entries, truncated=False)


def _single_file(real: Path) -> FileEntry:
    entry = _entry(real, name=real.name, shown_path=real)
    if entry is None:
        raise BadRequest("path is neither a regular file nor a folder")
    return entry


def _list_folder(roots: list[Path], folder: Path, limit: int) -> tuple[list[FileEntry], bool]:
    """Classify every child cheaply, sort, cut at ``limit``, and only then ``stat`` the ones returned."""
    found = _scan(roots, folder)
    ordered = sorted(found, key=lambda name: (found[name][0] is not EntryType.dir, name.casefold(), name))
    entries = []
    for name in ordered[:limit]:
        entry = _entry(found[name][1], name=name, shown_path=folder / name)
        if entry is not None:  # vanished or changed kind since the scan
            entries.append(entry)
    return entries, len(ordered) > limit


def _scan(roots: list[Path], folder: Path) -> dict[str, tuple[EntryType, Path]]:
    """Each listable child's type and the real path to ``stat`` for it."""
    try:
        with os.scandir(folder) as children:
            found = {child.name: _classify(roots, child) for child in children if _utf8(child.name)}
    except PermissionError:
        raise Forbidden("permission denied reading this folder") from None
    except OSError:
        raise NotFound("no such file or folder under the allowed roots") from None
    return {name: kind_and_target for name, kind_and_target in found.items() if kind_and_target is not None}


def _classify(roots: list[Path], child: os.DirEntry[str]) -> tuple[EntryType, Path] | None:
    """The child's type and real path, or None to omit it: special files, broken links, links leaving the roots."""
    try:
        if not child.is_symlink():  # d_type answers these without a stat per child
            if child.is_dir(follow_symlinks=False):
                return EntryType.dir, Path(child.path)
            return (EntryType.file, Path(child.path)) if child.is_file(follow_symlinks=False) else None
        target = Path(os.path.realpath(child.path))
        if containing_root(roots, target) is None:
            return None
        kind = _kind(target.stat().st_mode)
        return (kind, target) if kind is not None else None
    except (OSError, ValueError):
        return None


def _kind(mode: int) -> EntryType | None:
    if stat.S_ISDIR(mode):
        return EntryType.dir
    if stat.S_ISREG(mode):
        return EntryType.file
    return None


def _entry(target: Path, *, name: str, shown_path: Path) -> FileEntry | None:
    """``target`` is a real path: not following links means one swapped in since the scan is dropped."""
    try:
        info = os.stat(target, follow_symlinks=False)
    except (OSError, ValueError):
        return None
    kind = _kind(info.st_mode)
    if kind is None:
        return None
    return FileEntry(
        name=name,
        path=str(shown_path),
        type=kind,
        size=info.st_size if kind is EntryType.file else None,
        modified=datetime.fromtimestamp(info.st_mtime, tz=UTC),
    )


def _utf8(text: str) -> bool:
    """False for names holding undecodable bytes (surrogate escapes), which JSON cannot carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
