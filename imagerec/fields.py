"""Field types every request schema shares: strict ids, counts and flags, finite numbers, bounded paging.

Pydantic's lax mode takes JSON ``true`` as the integer 1 and ``"5"`` as 5, and a float field takes ``1e999``
(infinity) and ``NaN``. A request that says ``"dataset_id": true`` is a mistake, not an id, so ids, counts and
flags are strict here; every request model derives from ``RequestModel``, which forbids unknown keys and
non-finite floats. Integers are capped at what a 64-bit database column holds (SQLite and PostgreSQL both raise
OverflowError past it, which would otherwise surface as a 500).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from imagerec.config import QUEUE_PATTERN

MAX_DB_INT = 2**63 - 1

Id = Annotated[StrictInt, Field(ge=1, le=MAX_DB_INT)]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_DB_INT)]
Flag = StrictBool
Number = StrictFloat  # accepts ints, refuses booleans and strings; finiteness comes from RequestModel

QueueName = Annotated[str, Field(pattern=QUEUE_PATTERN, description=(
    "The Celery queue of the workers that should run it, e.g. gpu (IMAGEREC_EXECUTOR=celery); default: the "
    "default_queue setting. The built-in executor runs every task itself."))]

# Path and query parameters arrive as strings and are parsed by FastAPI; only the range needs saying.
IdPath = Annotated[int, Path(ge=1, le=MAX_DB_INT)]
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_DB_INT)]
AfterQuery = Annotated[int, Query(ge=0, le=MAX_DB_INT, description="A log sequence number")]


class RequestModel(BaseModel):
    """Base of every request body: unknown keys and non-finite floats are a 422."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
