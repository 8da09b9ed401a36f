"""Fetches the image a Label Studio task refers to — only from Label Studio itself or an allowed local root.

A task's ``data`` holds a reference that Label Studio wrote, but the request that carries it can come from
anyone, so no reference decides which host the server talks to (SSRF). What is accepted:

- a path relative to Label Studio (``/data/upload/3/x.jpg``, ``/data/local-files/?d=…``,
  ``/tasks/<id>/resolve/?fileuri=…``): fetched from the project's Label Studio connection (``connections``:
  a registered one, or ``IMAGEREC_LABELSTUDIO_URL``) with its token (``client.LabelStudioAuth``: a personal
  access token exchanged for a Bearer access token, a legacy token as ``Token``);
- an absolute ``http(s)`` URL whose scheme, host and port are those of that connection, or of a host listed in
  ``IMAGEREC_LABELSTUDIO_MEDIA_HOSTS`` (fetched without any token, any path); any other host is refused (403)
  and nothing is sent to it;
- either way only the paths Label Studio serves media from (``media_paths``); any other path of Label Studio
  (its REST API) is refused (403) before a request is made, since the token would act on it as its owner;
- ``/data/local-files/?d=<path>`` is first looked for on disk, through ``resolve_allowed`` (a relative ``d`` is
  taken relative to the first allowed root, so make that root Label Studio's LOCAL_FILES_DOCUMENT_ROOT);
- a ``data:…;base64,`` URL up to the annotate file-size limit.

Everything else (``s3://``, ``gs://``, ``file://``, ``//host/…``) is refused with a message that says why.
Requests are GETs. A redirect is followed only to a media path on the Label Studio host or to a listed media
host, each hop checked like the first (cloud storage that Label Studio answers with a redirect to a pre-signed
URL on another host needs that host listed). Bodies are read as a stream and cut off at
``annotate_max_file_bytes``; the token is never sent anywhere but Label Studio's media paths.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import SplitResult, parse_qs, unquote, urljoin, urlsplit

import anyio
import httpx

from imagerec.config import Settings
from imagerec.errors import BadRequest, Forbidden, ImagerecError, NotFound, PayloadTooLarge
from imagerec.files.service import resolve_allowed
from imagerec.labelstudio.client import Connection, TokenRefused, async_client
from imagerec.labelstudio.media_paths import media_path_problem

FETCH_TIMEOUT_SECONDS = 30.0  # Label Studio gives a whole predict call 100 s
MAX_REDIRECTS = 3
SHOWN_CHARS = 200  # of a reference quoted in an error: enough to recognise it, not a whole query
LOCAL_FILES_PATH = "/data/local-files"
DEFAULT_PORTS = {"http": 80, "https": 443}
SETTINGS_HINT = ("register the Label Studio with POST /api/labelstudio/connections {url, token}, or set "
                 "IMAGEREC_LABELSTUDIO_URL and IMAGEREC_LABELSTUDIO_API_TOKEN on the imagerec server")


class LabelStudioUnavailable(ImagerecError):
    """Label Studio could not be reached, or refused or failed to serve an image (502: the fault is upstream)."""

    status_code = 502


@dataclass(frozen=True)
class TaskImage:
    data: bytes
    file_name: str


@asynccontextmanager
async def open_fetcher(settings: Settings, connection: Connection | None) -> AsyncIterator[ImageFetcher]:
    """An ``ImageFetcher`` whose HTTP connections are closed on exit (one per predict request)."""
    async with async_client(connection, timeout=FETCH_TIMEOUT_SECONDS) as client:
        yield ImageFetcher(settings=settings, client=client, connection=connection)


class ImageFetcher:
    def __init__(self, *, settings: Settings, client: httpx.AsyncClient, connection: Connection | None) -> None:
        self.settings = settings
        self.client = client
        self.max_bytes = settings.annotate_max_file_bytes
        base = connection.url if connection is not None else None
        self.media_origins = {_origin(host) for host in settings.labelstudio_media_hosts}
        self.base_url = base
        self.origin = _origin(base) if base else None

    async def fetch(self, reference: object) -> TaskImage:
        """The bytes ``reference`` names; a typed error (4xx/502) saying why when it cannot or may not be read."""
        if not isinstance(reference, str) or not reference.strip():
            raise BadRequest("the task has no image reference (a URL string) under the key the label config names")
        reference = reference.strip()
        parts = urlsplit(reference)
        scheme = parts.scheme.lower()
        if scheme == "data":
            return self._data_url(reference)
        if scheme in DEFAULT_PORTS and _origin(reference) in self.media_origins - {self.origin}:
            return TaskImage(await self._download(reference), _file_name(parts))
        if scheme in DEFAULT_PORTS:
            return await self._from_label_studio(self._checked_absolute(reference), parts)
        if not scheme and not parts.netloc and reference.startswith("/"):
            return await self._from_label_studio(self._relative(reference), parts)
        raise _refused(reference, scheme)

    # -- where a reference may be read from ---------------------------------------------------------------
    def _relative(self, reference: str) -> str | None:
        return self.base_url + reference if self.base_url else None

    def _checked_absolute(self, url: str) -> str:
        if self.origin is None:
            raise Forbidden(f"image URL on host {_host(url)!r} refused: imagerec fetches task images only from "
                            f"the Label Studio host it is configured with, and none is configured ({SETTINGS_HINT})")
        if _origin(url) != self.origin:
            raise Forbidden(f"image URL on host {_host(url)!r} refused: it is not the host of the project's Label "
                            "Studio connection, and imagerec fetches task images from no other host")
        return url

    async def _from_label_studio(self, url: str | None, parts: SplitResult) -> TaskImage:
        file_name = _file_name(parts)
        local = await self._local_file(parts)
        if local is not None:
            return TaskImage(local, file_name)
        if url is None:
            raise Forbidden(f"image reference {parts.path!r} is relative to Label Studio, but imagerec does not "
                            f"know where Label Studio is: {SETTINGS_HINT}")
        return TaskImage(await self._download(url), file_name)

    def _require_media_url(self, url: str) -> None:
        """403 unless ``url`` is a media path on the Label Studio host, or on an allowed media host: checked
        before every request."""
        if _origin(url) in self.media_origins - {self.origin}:
            return
        if _origin(url) != self.origin:  # a relative reference that tried to name a host of its own
            raise Forbidden(f"image reference {_shown(url)!r} does not stay on the Label Studio host; refused")
        problem = self._media_problem(url)
        if problem:
            raise Forbidden(f"image reference {_shown(url)!r} refused: {problem}")

    def _media_problem(self, url: str) -> str | None:
        parts = urlsplit(url)
        path = _strip_base(parts.path, self.base_url)
        if path == parts.path and _base_path(self.base_url):
            return "it is not under the path Label Studio is served at (IMAGEREC_LABELSTUDIO_URL)"
        return media_path_problem(path, parts.query)

    async def _local_file(self, parts: SplitResult) -> bytes | None:
        """The file a ``/data/local-files/?d=…`` reference names, when it lies under an allowed root."""
        if not self.settings.allowed_roots or _strip_base(parts.path, self.base_url).rstrip("/") != LOCAL_FILES_PATH:
            return None
        wanted = parse_qs(parts.query).get("d")
        if not wanted:
            return None
        try:
            path = resolve_allowed(self.settings.allowed_roots, unquote(wanted[0]))
        except (NotFound, Forbidden):
            return None  # not ours to read: Label Studio may still serve it
        if not path.is_file():
            return None
        if path.stat().st_size > self.max_bytes:
            raise PayloadTooLarge(f"{path.name} is larger than the image limit ({self.max_bytes} bytes)")
        return await anyio.to_thread.run_sync(path.read_bytes)

    def _data_url(self, reference: str) -> TaskImage:
        header, _, payload = reference.partition(",")
        if not header.lower().endswith(";base64"):
            raise BadRequest("data: image URLs must be base64-encoded (data:image/...;base64,...)")
        if len(payload) * 3 // 4 > self.max_bytes:
            raise PayloadTooLarge(f"the data: image URL is larger than the image limit ({self.max_bytes} bytes)")
        try:
            return TaskImage(base64.b64decode(payload, validate=True), "data-url")
        except (binascii.Error, ValueError):
            raise BadRequest("the data: image URL is not valid base64") from None

    # -- talking to Label Studio ---------------------------------------------------------------------------
    async def _download(self, url: str) -> bytes:
        self._require_media_url(url)  # redirect hops are checked in _redirect_target, before they are requested
        for _ in range(MAX_REDIRECTS + 1):
            try:
                async with self.client.stream("GET", url) as response:  # the client's auth adds the token
                    if not response.is_redirect:
                        _check_status(response, url)
                        return await self._read_limited(response)
                    url = self._redirect_target(url, response.headers.get("location", ""))
            except TokenRefused as error:
                raise LabelStudioUnavailable(str(error)) from None
            except httpx.HTTPError as error:
                raise LabelStudioUnavailable(f"could not fetch {_shown(url)} from Label Studio: "
                                             f"{type(error).__name__}: {error}") from None
        raise LabelStudioUnavailable(f"Label Studio redirected {_shown(url)} more than {MAX_REDIRECTS} times")

    def _redirect_target(self, url: str, location: str) -> str:
        target = urljoin(url, location)
        if _origin(target) in self.media_origins - {self.origin}:  # cloud storage's pre-signed link
            return target
        if _origin(target) != self.origin:
            raise Forbidden(f"Label Studio redirected {_shown(url)} to another host ({_host(target)!r}); imagerec "
                            "follows no redirect off the Label Studio host unless IMAGEREC_LABELSTUDIO_MEDIA_HOSTS "
                            "lists that host (cloud storage: list its host, or turn off pre-signed URLs so that "
                            "Label Studio serves the file itself)")
        problem = self._media_problem(target)
        if problem:
            raise Forbidden(f"Label Studio redirected {_shown(url)} to {_shown(target)}, which is refused: {problem}")
        return target

    async def _read_limited(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise PayloadTooLarge(f"the image is larger than the image limit ({self.max_bytes} bytes)")
        chunks, received = [], 0
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            if received > self.max_bytes:
                raise PayloadTooLarge(f"the image is larger than the image limit ({self.max_bytes} bytes)")
            chunks.append(chunk)
        return b"".join(chunks)


def _check_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status < 300:
        return
    if status == 404:
        raise NotFound(f"Label Studio has no file at {_shown(url)} (404)")
    if status in (401, 403):
        raise LabelStudioUnavailable(f"Label Studio refused {_shown(url)} ({status}): check that the token "
                                     "registered for it (or IMAGEREC_LABELSTUDIO_API_TOKEN) is valid there")
    raise LabelStudioUnavailable(f"Label Studio answered {status} for {_shown(url)}")


def _refused(reference: str, scheme: str) -> Forbidden | BadRequest:
    if reference.startswith("//"):
        return Forbidden(f"image URL on host {_host('http:' + reference)!r} refused: only the configured "
                         "Label Studio host is fetched from")
    if scheme:
        return BadRequest(f"{scheme}:// image references are not fetched: imagerec reads task images only from "
                          "Label Studio (/data/upload/…, /data/local-files/?d=…) or an allowed local root; for "
                          "cloud storage let Label Studio serve the files (pre-signed URLs off)")
    return BadRequest(f"image reference {reference[:200]!r} is neither a Label Studio path (/data/…) nor a URL")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        raise BadRequest(f"image URL {url[:200]!r} has an invalid port") from None
    return scheme, (parts.hostname or "").lower(), port


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] or "(none)"


def _shown(url: str) -> str:
    """``url`` without its host, cut short: errors name the file, not the deployment's addresses."""
    parts = urlsplit(url)
    return (parts.path + (f"?{parts.query}" if parts.query else ""))[:SHOWN_CHARS]


def _base_path(base_url: str | None) -> str:
    return urlsplit(base_url).path.rstrip("/") if base_url else ""


def _strip_base(path: str, base_url: str | None) -> str:
    """``path`` without the path prefix of a Label Studio served under a sub-path (``/labelstudio/data/…``)."""
    prefix = _base_path(base_url)
    return path[len(prefix):] if prefix and path.startswith(prefix + "/") else path


def _file_name(parts: SplitResult) -> str:
    wanted = parse_qs(parts.query).get("d")
    name = PurePosixPath(unquote(wanted[0] if wanted else parts.path)).name
    return name or "task-image"
