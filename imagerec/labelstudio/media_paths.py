"""The paths Label Studio serves task media from: the only ones imagerec sends Label Studio's token to.

The token in ``Authorization: Token …`` is a user's API token: with it, any path of Label Studio's REST API
(``/api/projects/1/exports?delete=1`` …) acts as that user. A task's image reference comes with a predict
request that anyone may send, so it may name nothing but these routes (Label Studio's
``data_import/urls.py`` and ``io_storages/urls.py``), each with exactly the query it reads:

    /data/upload/<file>                       files uploaded into a project (no query)
    /data/local-files/?d=<path>               local-files storage
    /storage-data/uploaded/?filepath=<path>   uploads kept on persistent (cloud) storage
    /tasks/<id>/resolve/?fileuri=<uri>        cloud storage: proxied, or redirected to a pre-signed URL
    /projects/<id>/resolve/?fileuri=<uri>     (``presign`` is the older name of the same views)
    /tasks/<id>/presign/?fileuri=<uri>
    /projects/<id>/presign/?fileuri=<uri>

The path is judged as the server will see it, not normalised into shape: it is percent-decoded until that
changes nothing (a proxy in front may decode once more than Label Studio does), and a ``.`` or ``..`` segment,
an empty segment, a backslash or a control character in any of those forms is refused. Normalising them away
instead would trust that httpx, the proxy and Django all resolve them alike, and they do not.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote

MAX_DECODINGS = 4  # more layers of percent-encoding than this is no media path anyone wrote
ROUTES: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(r"/data/upload/.+"), ()),
    (re.compile(r"/data/local-files/?"), ("d",)),
    (re.compile(r"/storage-data/uploaded/?"), ("filepath",)),
    (re.compile(r"/(tasks|projects)/[0-9]+/(resolve|presign)/?"), ("fileuri",)),
]
UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\\]")
SERVED_FROM = ("/data/upload/…, /data/local-files/?d=…, /storage-data/uploaded/?filepath=…, "
               "/tasks/<id>/resolve/?fileuri=… or /projects/<id>/resolve/?fileuri=…")


def media_path_problem(path: str, query: str) -> str | None:
    """Why ``path?query`` (relative to Label Studio's root, still percent-encoded) is not fetched; None if it is."""
    decoded = _decodings(path)
    if decoded is None:
        return "it is percent-encoded more times than any media path is"
    for form in decoded:
        problem = _segment_problem(form)
        if problem:
            return problem
    keys = next((keys for pattern, keys in ROUTES if pattern.fullmatch(decoded[1])), None)
    if keys is None:
        return f"it is not a path Label Studio serves media from ({SERVED_FROM})"
    return _query_problem(query, keys)


def _decodings(path: str) -> list[str] | None:
    """``path``, then each percent-decoding of it until one changes nothing (so ``[1]`` is what Django routes);
    None when that takes more than ``MAX_DECODINGS``."""
    forms = [path, unquote(path)]
    while forms[-1] != forms[-2]:
        if len(forms) > MAX_DECODINGS:
            return None
        forms.append(unquote(forms[-1]))
    return forms


def _segment_problem(path: str) -> str | None:
    if UNSAFE_CHARACTERS.search(path):
        return "backslashes and control characters are not accepted in its path"
    segments = path.split("/")
    inner = segments[1:-1] if segments[-1] == "" else segments[1:]  # a trailing slash is part of a route
    if not path.startswith("/") or any(segment in ("", ".", "..") for segment in inner):
        return "'.', '..' and empty segments are not accepted in its path"
    return None


def _query_problem(query: str, keys: tuple[str, ...]) -> str | None:
    pairs = parse_qsl(query, keep_blank_values=True)
    if sorted(key for key, _ in pairs) != sorted(keys) or any(not value for _, value in pairs):
        wanted = "&".join(f"{key}=<value>" for key in keys)
        return f"this path takes {'the query ?' + wanted if keys else 'no query'}, and nothing else"
    return None
