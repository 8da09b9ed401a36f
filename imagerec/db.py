"""Database engine, sessions and the declarative base.

PostgreSQL (psycopg 3) gets the same busy timeout as its ``lock_timeout``; its transactions are READ COMMITTED,
and every status change is a conditional UPDATE, which PostgreSQL re-checks once a competing writer commits.
SQLite runs in WAL mode with a busy timeout, and every transaction starts with ``BEGIN IMMEDIATE``: a
transaction that reads and then writes cannot then fail with "database is locked" when a training child
committed in between (SQLite does not retry that case), it waits for the write lock instead.
Code that only reads can use ``read_session``: its transaction starts with a plain (deferred) ``BEGIN``, so in
WAL mode it reads the last committed state at once, even while a training child holds the write lock. Every
GET request reads through one (see ``deps.get_session``), so a burst of readers never queues on the write lock.

The pool holds as many connections as the API has worker threads (``db_pool_size``): a request never waits
for a connection another thread holds, so a burst of requests cannot exhaust the pool. ``retry_busy`` retries
work that failed because the database was busy or out of reach (a locked SQLite file, a dropped connection),
with backoff; background processes use it for every write they must not lose.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import JSON, Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)
T = TypeVar("T")
# What "the database is busy or out of reach" looks like: SQLite's locked/busy errors and dropped connections
# (OperationalError), and a pool with no free connection (TimeoutError). Retrying these is safe: the failed
# transaction was rolled back whole. ``is_busy`` tells them from an OperationalError that is a real fault.
BUSY_ERRORS = (OperationalError, PoolTimeout)
BUSY_MESSAGES = ("database is locked", "database is busy", "database table is locked", "unable to open database",
                 "disk i/o error", "server closed the connection", "connection refused", "could not connect",
                 # PostgreSQL: a lock held past lock_timeout, a deadlock victim, a server restarting or failing over
                 "lock timeout", "deadlock detected", "could not serialize access", "terminating connection",
                 "the database system is", "connection failed", "consuming input failed")
DEFAULT_POOL_SIZE = 40  # anyio's default worker-thread count: one connection per thread that can ask for one

DEFERRED_BEGIN = "imagerec_deferred_begin"  # execution option read by the SQLite "begin" listener

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Stores UTC; SQLite drops the zone, so it is put back on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict: JSON, list: JSON}


def make_engine(url: str, *, pool_size: int = DEFAULT_POOL_SIZE, busy_timeout: float = 30.0) -> Engine:
    pool = {"pool_size": pool_size, "max_overflow": 8, "pool_timeout": 30}
    if not url.startswith("sqlite"):
        # A row or table lock held elsewhere makes a PostgreSQL writer wait forever; lock_timeout turns that wait
        # into the same "busy" a locked SQLite file gives after its busy timeout (retried, or a 503 in the API).
        options = {"options": f"-c lock_timeout={int(busy_timeout * 1000)}"} if url.startswith("postgresql") else {}
        return create_engine(url, pool_pre_ping=True, connect_args=options, **pool)
    engine = create_engine(url, connect_args={"timeout": busy_timeout, "check_same_thread": False}, **pool)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection):
        if connection.get_execution_options().get(DEFERRED_BEGIN):
            connection.exec_driver_sql("BEGIN")  # read_session: takes no lock until it reads, never the write lock
            return
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the request's unit of work has committed (e.g. wake the executor)."""
    session.info.setdefault("after_commit", []).append(callback)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Commit on success, roll back on error, then run the after-commit callbacks."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        for callback in session.info.pop("after_commit", []):
            callback()


@contextmanager
def read_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reads alone: deferred ``BEGIN`` on SQLite (see the module docstring), never committed.

    Closing it ends the transaction without expiring the rows read, so they stay usable afterwards. A write
    through it is discarded; use ``unit_of_work`` for anything that writes.
    """
    with factory() as session:
        session.connection(execution_options={DEFERRED_BEGIN: True})  # before the transaction begins
        yield session


def is_busy(error: BaseException) -> bool:
    if isinstance(error, PoolTimeout):
        return True
    if not isinstance(error, OperationalError):
        return False
    text = str(error.orig if error.orig is not None else error).lower()
    return bool(error.connection_invalidated) or any(message in text for message in BUSY_MESSAGES)


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A Core connection for one quick read on a hot path (the API key check): no ORM session; deferred
    ``BEGIN`` as in ``read_session`` (measured faster than autocommit mode, which resets the connection)."""
    with engine.connect().execution_options(**{DEFERRED_BEGIN: True}) as connection:
        yield connection


def retry_busy(work: Callable[[], T], *, what: str, deadline_seconds: float | None = 60.0,
               first_delay: float = 0.05, max_delay: float = 5.0) -> T:
    """Run ``work`` (a whole transaction) until it gets past a busy database; re-raise after ``deadline_seconds``
    (None: retry until it succeeds, for results that must land)."""
    started = time.monotonic()
    delay = first_delay
    while True:
        try:
            return work()
        except BUSY_ERRORS as error:
            if not is_busy(error):
                raise
            waited = time.monotonic() - started
            if deadline_seconds is not None and waited + delay > deadline_seconds:
                raise
            log.warning("database busy during %s (%s); retrying in %.2f s", what, type(error).__name__, delay)
            time.sleep(delay * (0.5 + random.random()))  # jitter: retrying writers do not collide again
            delay = min(delay * 2, max_delay)
