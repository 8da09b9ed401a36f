"""Exactly one process owns a task: a lock on its run folder, and children that die with their executor.

- **The run lock.** A task child holds an exclusive ``flock`` on ``<run dir>/.owner.lock`` (holding its pid)
  for as long as it lives; the kernel releases it when the process and every process it forked (dataloader
  workers) are gone, however they ended. A second process that wants the folder waits for the lock, so two
  processes never write one run folder. The executor asks ``lock_holder`` whether a task's process still lives
  before it marks the task as anything.
- **Parent death.** A child asks the kernel for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``), so a
  server killed outright (kill -9, OOM) does not leave trainings running that nobody watches. Children also
  start their own session (``setsid``) so that a hard cancel can kill their whole process group.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import sys
import time
from pathlib import Path

LOCK_FILE = ".owner.lock"
PR_SET_PDEATHSIG = 1


class RunFolderBusy(RuntimeError):
    """Another live process still owns the run folder."""


def die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when its parent dies; exit now if the parent is already gone."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def acquire(run_dir: Path, *, wait_seconds: float) -> int:
    """Take the run folder's lock (waiting up to ``wait_seconds`` for a dying owner); the fd to keep open."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _read_pid(fd)
                os.close(fd)
                raise RunFolderBusy(f"another process (pid {holder}) still owns this task's run folder") from None
            time.sleep(0.2)
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def lock_holder(run_dir: Path) -> int | None:
    """The pid of the live process that owns ``run_dir``, or None when nobody does."""
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(fd) or -1
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def stop_owner(run_dir: Path, *, wait_seconds: float = 15.0) -> int | None:
    """Kill the process group that owns ``run_dir`` and wait until the lock is free; the pid it had, if any."""
    holder = lock_holder(run_dir)
    if holder is None:
        return None
    if holder > 0:
        for kill in (os.killpg, os.kill):
            try:
                kill(holder, signal.SIGKILL)
                break
            except (ProcessLookupError, PermissionError):
                continue
    deadline = time.monotonic() + wait_seconds
    while lock_holder(run_dir) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    return holder


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
