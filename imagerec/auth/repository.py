"""Every query on API keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Row, bindparam, select, update
from sqlalchemy.orm import Session

from imagerec.auth.models import ApiKey

# Built once: constructing a statement per request costs more than running it (this runs on every request).
CREDENTIALS = select(ApiKey.id, ApiKey.name, ApiKey.secret_hash, ApiKey.scopes, ApiKey.expires_at,
                     ApiKey.revoked_at).where(ApiKey.lookup == bindparam("lookup"))


def credentials(connection: Connection, *, lookup: str) -> Row | None:
    """What checking a key needs, read with Core on a plain connection."""
    return connection.execute(CREDENTIALS, {"lookup": lookup}).first()


def get(session: Session, key_id: int) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def name_taken(session: Session, *, name: str) -> bool:
    return session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None


def add(session: Session, *, key: ApiKey) -> ApiKey:
    session.add(key)
    session.flush()
    return key


def list_keys(session: Session) -> Sequence[ApiKey]:
    return session.scalars(select(ApiKey).order_by(ApiKey.id)).all()


def revoke(session: Session, *, key_id: int, at: datetime) -> bool:
    statement = update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=at)
    return session.execute(statement.execution_options(synchronize_session=False)).rowcount == 1


def touch(session: Session, *, key_id: int, at: datetime) -> None:
    statement = update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at)
    session.execute(statement.execution_options(synchronize_session=False))
