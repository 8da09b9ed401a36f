"""Keys this server process has already checked, so most requests read no database row.

A revocation must still take effect on the next request, including one made by another process (``imagerec keys
revoke`` on the server's shell, another API worker). Every revocation therefore moves a stamp file in the data dir
(``keys.stamp``, replaced atomically, so its inode changes) after its commit, and every lookup first compares the
stamp's ``stat`` (a few µs) with the one it last saw: a different stamp empties the cache. Only valid keys are
kept; an entry is dropped when its key expires, and is re-read from the database after ``max_age_seconds`` anyway,
which bounds how long a change made behind imagerec's back (an edit of the database by hand) goes unseen.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from imagerec.auth.scopes import Caller
from imagerec.db import utcnow

STAMP_FILE = "keys.stamp"


@dataclass(frozen=True)
class _Entry:
    caller: Caller
    checked_at: float


def _fingerprint(presented: str) -> str:
    return hashlib.sha256(presented.encode()).hexdigest()  # no key kept in memory beyond its request


def read_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def move_stamp(data_dir: Path) -> None:
    """Tell every server process that a key changed (call it after the change is committed)."""
    fd, temporary = tempfile.mkstemp(dir=data_dir, prefix=".keys-stamp-")
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{time.time_ns()}\n")
    os.replace(temporary, data_dir / STAMP_FILE)


class CheckedKeys:
    def __init__(self, data_dir: Path, *, max_age_seconds: float = 10.0, capacity: int = 1024) -> None:
        self._stamp_path = data_dir / STAMP_FILE
        self._max_age = max_age_seconds
        self._capacity = capacity
        self._entries: dict[str, _Entry] = {}
        self._stamp = read_stamp(self._stamp_path)

    def get(self, presented: str) -> Caller | None:
        """The caller of a key checked before and still valid, or None (then ask the database)."""
        stamp = read_stamp(self._stamp_path)
        if stamp != self._stamp:
            self._entries.clear()
            self._stamp = stamp
            return None
        fingerprint = _fingerprint(presented)
        entry = self._entries.get(fingerprint)
        if entry is None:
            return None
        expired = entry.caller.expires_at is not None and entry.caller.expires_at <= utcnow()
        if expired or time.monotonic() - entry.checked_at > self._max_age:
            del self._entries[fingerprint]
            return None
        return entry.caller

    def put(self, presented: str, caller: Caller) -> None:
        if len(self._entries) >= self._capacity:
            self._entries.clear()  # many distinct valid keys at once: rare, and a miss only costs one read
        self._entries[_fingerprint(presented)] = _Entry(caller, time.monotonic())
