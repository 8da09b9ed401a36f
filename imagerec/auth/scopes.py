"""Who is calling and what they may do: scopes, and the caller a request resolves to.

    read      list and download (datasets, tasks, models, logs, metrics)
    annotate  auto-annotation, pre-labelling jobs, the Label Studio backend
    train     datasets, trainings, evaluations: create, cancel, resume, delete one's own (implies read)
    admin     keys, deleting or stopping others' work, settings (implies every scope)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Scope(StrEnum):
    read = "read"
    annotate = "annotate"
    train = "train"
    admin = "admin"


GRANTS: dict[Scope, frozenset[Scope]] = {
    Scope.read: frozenset({Scope.read}),
    Scope.annotate: frozenset({Scope.annotate}),
    Scope.train: frozenset({Scope.train, Scope.read}),
    Scope.admin: frozenset(Scope),
}


def granted(scopes: list[str] | frozenset[Scope]) -> frozenset[Scope]:
    """Every scope that ``scopes`` give, implied ones included."""
    return frozenset(scope for name in scopes for scope in GRANTS[Scope(name)])


@dataclass(frozen=True)
class Caller:
    """The key behind a request (``key_id`` None: the configured admin key, or auth switched off)."""

    name: str
    scopes: frozenset[Scope]
    key_id: int | None = None
    expires_at: datetime | None = None

    def may(self, scope: Scope) -> bool:
        return scope in self.scopes


def check_owner(caller: Caller, *, created_by: str | None, what: str) -> None:
    """Changing or deleting work another key created needs ``admin`` (work with no recorded creator: anyone's)."""
    from imagerec.errors import Forbidden  # errors imports the database layer; scopes stays import-light

    if created_by is None or created_by == caller.name or caller.may(Scope.admin):
        return
    raise Forbidden(f"{what} was created by key '{created_by}'; changing another key's work needs the 'admin' "
                    f"scope (key '{caller.name}' has: {', '.join(sorted(caller.scopes))})",
                    details={"needed": [Scope.admin], "held": sorted(caller.scopes)})
