"""The executor interface. The built-in one (local.py) runs tasks in spawned child processes on this machine;
a later one runs the same task code on other machines. Executors claim queued tasks from the database, so
``submit`` is only a wake-up call: a task committed as queued is picked up even if the call is lost."""

from __future__ import annotations

from typing import Protocol


class Executor(Protocol):
    kind: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def submit(self, task_id: int) -> None: ...

    def cancel(self, task_id: int) -> None:
        """The task's cancel flag is set; make sure it ends (kill it when it ignores the flag)."""

    def state(self) -> dict: ...
