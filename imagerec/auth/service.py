"""API keys: creating, checking, revoking, and the first admin key.

A key reads ``irk_<lookup>_<secret>``. ``lookup`` finds the row (it is stored as is); only the sha256 of
``secret`` is stored, and it is compared in constant time. The configured ``IMAGEREC_ADMIN_KEY`` is checked the
same way. When no admin key is configured, the first start creates one and writes it to ``<data dir>/admin.key``
(mode 0600, created exclusively); the server log names the file, never the key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from imagerec.auth import repository
from imagerec.auth.cache import move_stamp
from imagerec.auth.models import ApiKey
from imagerec.auth.scopes import Caller, Scope, granted
from imagerec.config import Settings
from imagerec.db import read_session, unit_of_work, utcnow
from imagerec.errors import Conflict, NotFound
from imagerec.secrets import write_exclusive

log = logging.getLogger(__name__)

PREFIX = "irk"
ADMIN_KEY_FILE = "admin.key"
CONFIGURED_ADMIN = "admin (IMAGEREC_ADMIN_KEY)"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_key() -> tuple[str, str, str]:
    lookup, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    return lookup, secret, f"{PREFIX}_{lookup}_{secret}"


def create(session: Session, *, name: str, scopes: list[Scope], expires_at: datetime | None,
           created_by: str | None) -> tuple[ApiKey, str]:
    """The new row and the key itself (shown once; only its hash is kept)."""
    if repository.name_taken(session, name=name):
        raise Conflict(f"a key named {name!r} already exists")
    lookup, secret, plaintext = _new_key()
    key = ApiKey(name=name, lookup=lookup, secret_hash=_digest(secret), scopes=sorted(scopes),
                 created_by=created_by, expires_at=expires_at)
    return repository.add(session, key=key), plaintext


def get_or_404(session: Session, *, key_id: int) -> ApiKey:
    key = repository.get(session, key_id)
    if key is None:
        raise NotFound(f"key {key_id} not found")
    return key


def revoke(session: Session, *, key: ApiKey, data_dir: Path) -> ApiKey:
    """Revoke ``key``; committed here, so the stamp that tells every server process moves after the change."""
    repository.revoke(session, key_id=key.id, at=utcnow())
    session.commit()
    move_stamp(data_dir)
    session.refresh(key)
    return key


def identify(connection: Connection, *, settings: Settings, presented: str) -> Caller | None:
    """The caller ``presented`` stands for, or None (unknown, revoked, expired or malformed)."""
    configured = settings.admin_key.get_secret_value() if settings.admin_key else None
    if configured and hmac.compare_digest(_digest(presented), _digest(configured)):
        return Caller(name=CONFIGURED_ADMIN, scopes=granted([Scope.admin]))
    prefix, _, rest = presented.partition("_")
    lookup, _, secret = rest.partition("_")
    if prefix != PREFIX or not lookup or not secret:
        return None
    key = repository.credentials(connection, lookup=lookup)
    if key is None or not hmac.compare_digest(key.secret_hash, _digest(secret)):
        return None
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= utcnow()):
        return None
    return Caller(name=key.name, scopes=granted(key.scopes), key_id=key.id, expires_at=key.expires_at)


def touch(factory: sessionmaker[Session], *, key_id: int) -> None:
    with unit_of_work(factory) as session:
        repository.touch(session, key_id=key_id, at=utcnow())


def bootstrap_admin_key(settings: Settings, factory: sessionmaker[Session]) -> Path | None:
    """Make sure an admin key exists: the configured one, or the one in ``<data dir>/admin.key``."""
    if settings.auth == "off" or settings.admin_key is not None:
        return None
    path = settings.data_dir / ADMIN_KEY_FILE
    if path.is_file():
        with read_session(factory) as session:
            caller = identify(session.connection(), settings=settings, presented=path.read_text().strip())
        if caller is not None and caller.may(Scope.admin):
            return path
        log.warning("%s holds no valid admin key; writing a new one", path)
        path.unlink()
    with unit_of_work(factory) as session:
        _, plaintext = create(session, name=_free_admin_name(session), scopes=[Scope.admin], expires_at=None,
                              created_by=None)
        write_exclusive(path, plaintext)
    log.warning("generated an admin API key: it is in %s (readable by this user only)", path)
    return path


def _free_admin_name(session: Session) -> str:
    name, counter = "admin", 1
    while repository.name_taken(session, name=name):
        counter += 1
        name = f"admin-{counter}"
    return name
