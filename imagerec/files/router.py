"""The server-side file browser, for local deployments: lets a front end pick a dataset folder on the server."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from imagerec.deps import SettingsDep
from imagerec.files import service
from imagerec.files.schemas import DirectoryListing

router = APIRouter()

_ERRORS = {
    400: {"description": "NUL byte in the path, path too long, or a path that is neither file nor folder"},
    403: {"description": "outside the allowed roots, no roots configured, or permission denied"},
    404: {"description": "inside an allowed root but does not exist"},
}


@router.get(
    "/select-local-file",
    response_model=DirectoryListing,
    summary="Browse server folders inside the allowed roots",
    responses=_ERRORS,
)
def select_local_file(
    settings: SettingsDep,
    path: Annotated[str | None, Query(description="Folder or file to open; omit to list the allowed roots.")] = None,
) -> DirectoryListing:
    """List what a user may pick on the server.

    - No ``path`` (or an empty one): the configured allowed roots (``IMAGEREC_ALLOWED_ROOTS``), as folders.
    - A folder: its children, folders first then files, each sorted by name (case-insensitive); at most
      1000 entries, with ``truncated`` set when there were more. ``parent`` is null at an allowed root.
    - A file: a listing holding just that file, with ``parent`` its folder (so a typed path can be checked).

    ``path`` is resolved with symlinks; a relative path is taken from the first root. The ``path`` answered is
    the resolved one; each entry's ``path`` can be sent back as the next ``path``. Hidden (dot) files are shown.
    Omitted without a trace: symlinks leading outside the roots, broken symlinks, sockets, FIFOs and devices.

    Errors never describe anything outside the roots: 403 outside them (``..``, absolute paths, symlinks out,
    sibling folders sharing a prefix), when no roots are configured, or when permission is denied; 404 for a
    missing path inside them; 400 for a NUL byte.
    """
    return service.browse(roots=settings.allowed_roots, raw_path=path)
