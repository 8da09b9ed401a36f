"""The data dir and the database must belong together: a marker file in the data dir holds the token that the
database's ``deployment`` row holds.

The API writes both at its first start. A worker checks them before it takes any task, and refuses to start when
they differ: a worker that sees another folder (the shared filesystem not mounted, a different mount, another
deployment's database) would write runs that nobody else can read, or read datasets that are not there.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from imagerec.config import Settings
from imagerec.db import unit_of_work
from imagerec.workers import repository

MARKER = ".imagerec-deployment"


class DataDirMismatch(RuntimeError):
    """The data dir is not the one the database describes."""


def _read_marker(data_dir: Path) -> str | None:
    try:
        return (data_dir / MARKER).read_text().strip() or None
    except FileNotFoundError:
        return None


def ensure(settings: Settings, session_factory: sessionmaker[Session]) -> str:
    """At API start: create the token and marker on first use; refuse a data dir of another deployment."""
    with unit_of_work(session_factory) as session:
        row = repository.deployment(session)
        marker = _read_marker(settings.data_dir)
        if row is None:
            token = marker or secrets.token_hex(16)
            repository.add_deployment(session, token=token)
        else:
            token = row.data_dir_token
    if marker is None:
        (settings.data_dir / MARKER).write_text(token + "\n")
    elif marker != token:
        raise DataDirMismatch(f"the data dir {settings.data_dir} belongs to another deployment (its {MARKER} "
                              f"does not match the database's); point IMAGEREC_DATA_DIR or IMAGEREC_DATABASE_URL "
                              f"at the pair that belong together")
    return token


def check(settings: Settings, session_factory: sessionmaker[Session]) -> None:
    """At worker start: the data dir this machine sees must be the deployment's."""
    with unit_of_work(session_factory) as session:
        row = repository.deployment(session)
    if row is None:
        raise DataDirMismatch("the database has no deployment record yet: start the API once on this database "
                              "(it creates the record and the data dir's marker) before starting workers")
    marker = _read_marker(settings.data_dir)
    if marker is None:
        raise DataDirMismatch(f"the data dir {settings.data_dir} has no {MARKER} file: it is not the deployment's "
                              f"shared data dir (is the shared filesystem mounted here, at the same path?)")
    if marker != row.data_dir_token:
        raise DataDirMismatch(f"the data dir {settings.data_dir} belongs to another deployment: its {MARKER} does "
                              f"not match the database's (a different mount, or another deployment's database)")
