"""What the server-side file browser answers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class EntryType(StrEnum):
    dir = "dir"  # a folder (or a symlink to one inside the allowed roots)
    file = "file"  # a regular file (or a symlink to one inside the allowed roots)


class FileEntry(BaseModel):
    name: str
    path: str = Field(description="Absolute server path; pass it back as `path` to open a folder.")
    type: EntryType
    size: int | None = Field(None, description="Bytes, for files; null for folders.")
    modified: datetime


class DirectoryListing(BaseModel):
    path: str | None = Field(description="The real (resolved) path listed; null when listing the allowed roots.")
    parent: str | None = Field(description="The folder above `path`; null at an allowed root or the roots list.")
    entries: list[FileEntry]
    truncated: bool = Field(description="True when the folder held more entries than were returned.")
