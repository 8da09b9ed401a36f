from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from imagerec.auth.scopes import Scope
from imagerec.fields import RequestModel

KeyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100,
                                           pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@ -]*$")]


class KeyCreate(RequestModel):
    name: KeyName = Field(description="Shown in logs and on the records the key creates")
    scopes: list[Scope] = Field(min_length=1, max_length=4, description="read, annotate, train, admin")
    expires_at: datetime | None = Field(None, description="After this instant the key is refused (ISO 8601, with zone)")


class KeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    scopes: list[Scope]
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyRead):
    key: str = Field(description="The key itself: shown this once, stored only as a hash")
