"""Which Label Studio instances imagerec talks to, and with whose token.

A connection is registered by an admin (``POST /api/labelstudio/connections {url, token}``); the token is stored
encrypted (``imagerec.secrets``) and never returned. ``IMAGEREC_LABELSTUDIO_URL`` and
``IMAGEREC_LABELSTUDIO_API_TOKEN`` still work: they are the connection of a deployment that registers none.

The ``hostname`` a ``/setup`` names is only matched against these, never fetched from: a Label Studio that is
not registered gets 403, so a request cannot point imagerec at a host of its choosing (SSRF). URLs are compared
normalised: lower-case scheme and host, the port only when it is not the scheme's default, no trailing slash.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from imagerec import secrets
from imagerec.config import Settings
from imagerec.errors import BadRequest, Forbidden, NotFound
from imagerec.labelstudio import repository
from imagerec.labelstudio.client import Connection, token_kind
from imagerec.labelstudio.models import LabelStudioConnection

DEFAULT_PORTS = {"http": 80, "https": 443}
REGISTER_HINT = "register it with POST /api/labelstudio/connections {url, token} (admin scope)"


def normal_url(raw: str) -> str:
    """``raw`` as connections compare it; 400 when it is not an http(s) URL with a host."""
    try:
        parts = urlsplit(raw.strip())
        port = parts.port
    except ValueError:
        raise BadRequest(f"{raw[:200]!r} is not a URL") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
        raise BadRequest(f"{raw[:200]!r} is not an http(s) URL with a host (and no user or password)")
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def register(session: Session, settings: Settings, *, url: str, token: str,
             created_by: str | None) -> tuple[LabelStudioConnection, bool]:
    """The connection for ``url``, its token replaced when it existed; True when it is new."""
    url = normal_url(url)
    row = repository.connection_by_url(session, url=url)
    created = row is None
    if row is None:
        row = LabelStudioConnection(url=url, created_by=created_by)
    row.token_encrypted = secrets.encrypt(settings, token)
    row.token_kind = token_kind(token)
    try:
        repository.add(session, row)
    except IntegrityError:  # registered concurrently: the other request's token stands
        session.rollback()
        row, created = repository.connection_by_url(session, url=url), False
    return row, created


def list_connections(session: Session) -> Sequence[LabelStudioConnection]:
    return repository.list_connections(session)


def delete(session: Session, *, connection_id: int) -> None:
    row = repository.get_connection(session, connection_id=connection_id)
    if row is None:
        raise NotFound(f"Label Studio connection {connection_id} not found")
    repository.delete(session, row)


def configured(settings: Settings) -> Connection | None:
    """The connection the settings describe, if any."""
    if settings.labelstudio_url is None:
        return None
    token = settings.labelstudio_api_token.get_secret_value() if settings.labelstudio_api_token else None
    return Connection(url=normal_url(str(settings.labelstudio_url)), token=token)


def for_url(session: Session, settings: Settings, url: str) -> Connection | None:
    """The connection registered (or configured) for a normalised ``url``; None when there is none."""
    row = repository.connection_by_url(session, url=url)
    if row is not None:
        return Connection(url=row.url, token=secrets.decrypt(settings, row.token_encrypted), id=row.id)
    from_settings = configured(settings)
    return from_settings if from_settings is not None and from_settings.url == url else None


def for_setup(session: Session, settings: Settings, *, hostname: str | None) -> Connection | None:
    """The connection of the Label Studio a ``/setup`` comes from: 403 when it names one that is not registered.
    Without a hostname (older Label Studio): the only connection there is, if there is exactly one."""
    if hostname is None or not hostname.strip():
        return sole(session, settings)
    try:
        url = normal_url(hostname)
    except BadRequest:
        raise Forbidden(f"Label Studio's hostname {hostname[:200]!r} is not a URL; {REGISTER_HINT}") from None
    connection = for_url(session, settings, url)
    if connection is None:
        raise Forbidden(f"Label Studio at {url} is not registered with imagerec: {REGISTER_HINT}; Label Studio "
                        "sends its LABEL_STUDIO_HOST setting as the hostname, so register that URL")
    return connection


def sole(session: Session, settings: Settings) -> Connection | None:
    rows = repository.list_connections(session)
    from_settings = configured(settings)
    if from_settings is not None and not any(row.url == from_settings.url for row in rows):
        return from_settings if not rows else None
    if len(rows) == 1:
        return for_url(session, settings, rows[0].url)
    return None
