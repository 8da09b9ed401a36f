"""``imagerec keys …``: key management from the server's shell, on the data dir's database directly."""

from __future__ import annotations

import argparse
import sys

from imagerec.auth import repository, service
from imagerec.config import Settings
from imagerec.db import make_engine, make_session_factory, read_session, unit_of_work
from imagerec.errors import ImagerecError
from imagerec.migrations import upgrade

CREATED_BY = "imagerec keys (shell)"


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings.ensure_dirs()
    upgrade(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url, pool_size=1)
    factory = make_session_factory(engine)
    try:
        return {"create": _create, "list": _list, "revoke": _revoke}[args.action](args, factory, settings)
    except ImagerecError as error:
        print(f"imagerec keys: error: {error.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()


def _create(args: argparse.Namespace, factory, _settings: Settings) -> int:
    if args.expires is not None and args.expires.tzinfo is None:
        print("imagerec keys: error: --expires needs a time zone (e.g. 2027-01-31T00:00Z)", file=sys.stderr)
        return 2
    with unit_of_work(factory) as session:
        key, plaintext = service.create(session, name=args.name, scopes=sorted(set(args.scope)),
                                        expires_at=args.expires, created_by=CREATED_BY)
        print(f"created key {key.id} '{key.name}' with scopes {', '.join(key.scopes)} (shown once):",
              file=sys.stderr)
    print(plaintext)
    return 0


def _list(_args: argparse.Namespace, factory, _settings: Settings) -> int:
    with read_session(factory) as session:
        for key in repository.list_keys(session):
            state = "revoked" if key.revoked_at else "active"
            print(f"{key.id}\t{key.name}\t{','.join(key.scopes)}\t{state}\tlast used {key.last_used_at or 'never'}")
    return 0


def _revoke(args: argparse.Namespace, factory, settings: Settings) -> int:
    with unit_of_work(factory) as session:
        key = service.revoke(session, key=service.get_or_404(session, key_id=args.id), data_dir=settings.data_dir)
        print(f"revoked key {key.id} '{key.name}'")
    return 0
