"""The vocabulary shared by every domain: which vision task a dataset or model serves."""

from enum import StrEnum


class VisionTask(StrEnum):
    detect = "detect"
    segment = "segment"
    classify = "classify"
    pose = "pose"
