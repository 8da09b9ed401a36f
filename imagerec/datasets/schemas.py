from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AliasPath, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from imagerec.datasets.formats import DatasetFormat
from imagerec.datasets.splitting import SplitRequest
from imagerec.fields import Flag, RequestModel
from imagerec.vision import VisionTask

DatasetName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


Ratio = Annotated[float, Field(ge=0, le=0.9)]
KptShape = Annotated[list[Annotated[int, Field(strict=True, ge=1, le=1000)]], Field(min_length=2, max_length=2)]


class ImportChoice(RequestModel):
    """How the source is read: its format (detected when left out), keypoints the format cannot say, and how
    data without a validation split (or all data, with ``resplit``) is split."""

    format: DatasetFormat | None = Field(None, description="Detected from the files when left out.")
    val_ratio: Ratio = 0.2
    test_ratio: Ratio = 0.0
    seed: Annotated[int, Field(strict=True, ge=0, le=2**31 - 1)] = 0
    resplit: Flag = Field(False, description="Split every image anew, ignoring the source's own splits.")
    kpt_shape: KptShape | None = Field(None, description="Pose: [keypoints, 2 or 3], when the format lacks it.")
    flip_idx: list[Annotated[int, Field(strict=True, ge=0)]] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ImportChoice:
        if self.val_ratio + self.test_ratio > 0.9:
            raise ValueError("val_ratio + test_ratio must leave at least 10 % of the images for training")
        if self.kpt_shape is not None and self.kpt_shape[1] not in (2, 3):
            raise ValueError("kpt_shape is [keypoints, 2 or 3]")
        if self.flip_idx is not None:
            if self.kpt_shape is None or sorted(self.flip_idx) != list(range(self.kpt_shape[0])):
                raise ValueError("flip_idx must be a permutation of 0..K-1 of the kpt_shape given with it")
        return self

    @property
    def split(self) -> SplitRequest:
        return SplitRequest(val_ratio=self.val_ratio, test_ratio=self.test_ratio, seed=self.seed,
                            resplit=self.resplit)


class DatasetImport(ImportChoice):
    """Register a dataset that stays in a folder on the server (inside an allowed root)."""

    name: DatasetName
    task: VisionTask
    path: Annotated[str, Field(min_length=1, max_length=4096, description="Folder on the server.")]

    def choice(self) -> ImportChoice:
        return ImportChoice(**self.model_dump(include=set(ImportChoice.model_fields)))


class SplitCounts(BaseModel):
    images: int
    instances: int  # labelled objects; for classify, one per image
    backgrounds: int  # images without any object


class DatasetSplits(BaseModel):
    train: SplitCounts
    val: SplitCounts
    test: SplitCounts | None = None  # only when the dataset has a test split


class DatasetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    task: VisionTask
    class_names: list[str]
    kpt_shape: list[int] | None
    flip_idx: list[int] | None
    splits: DatasetSplits = Field(validation_alias=AliasPath("summary", "splits"))
    warnings: list[str] = Field(validation_alias=AliasPath("summary", "warnings"))
    format: str | None = Field(None, validation_alias=AliasPath("summary", "import", "format"),
                               description="The format the source was read as")
    format_reason: str | None = Field(None, validation_alias=AliasPath("summary", "import", "reason"),
                                      description="Why that format: what detection found, or 'given in the request'")
    version: int = Field(description="1 for a new dataset; each new version of it counts up")
    parent_id: int | None = Field(description="The version this one was made from")
    content_hash: str | None = Field(description="sha256 of every image, label and the class list")
    source: Literal["upload", "path", "prelabel", "labelstudio"]
    source_path: str | None
    created_at: datetime
    created_by: str | None = Field(None, description="The name of the API key that created it")


class DatasetDeleted(BaseModel):
    """The answer to a delete: the dataset is gone from lists and lookups, its record stays as lineage."""

    id: int
    kind: Literal["dataset"] = "dataset"
    deleted: Literal[True] = True
    notes: list[str] = Field(description="What the delete touched: the models trained on it.")


class DatasetImportTask(RequestModel):
    """The params of a ``dataset_import`` task: what the request asked for, kept until the task ends. The upload
    itself waits in the task's run folder as ``upload.zip``; ``path`` is a server folder instead."""

    name: DatasetName
    task: VisionTask
    choice: ImportChoice
    path: str | None = None
    images: int = Field(ge=0, description="Images counted when the request came in (for progress)")
