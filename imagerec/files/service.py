"""Confinement of server paths to the configured allowed roots.

Every filesystem path a user names goes through ``resolve_allowed`` before anything touches it: the path is
resolved (symlinks included) and must then lie inside one resolved root, compared by path components so that
``/data-evil`` is not inside ``/data``.
"""

from __future__ import annotations

import os
from pathlib import Path

from imagerec.errors import BadRequest, Forbidden, NotFound


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

    A relative path is taken relative to the first root.
    """
    require_roots(roots)
    if "\x00" in raw_path:
        raise BadRequest("path contains a NUL byte")
    candidate = Path(raw_path)
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    real = Path(os.path.realpath(candidate))
    if containing_root(roots, real) is None:
        raise Forbidden("path is outside the allowed roots")
    if not real.exists():
        raise NotFound("no such file or folder under the allowed roots")
    return real
