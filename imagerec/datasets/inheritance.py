"""What a new dataset version holds unchanged from its parent, so its checks, stats and manifest cost only what
changed.

A version starts as its parent's files made of links (``registration.link_tree``); removing, adding and
relabelling images unlinks the files they touch. A manifest key (``<split>/<name>``) is *inherited* when its
image is still the parent's inode and its label too (or it had none and still has none; for classify, the image
is still in the same class folder). The parent checked those files when it registered and its manifest holds
their hashes and instances, so they are neither read nor checked again. ``gone`` are the parent's keys that are
not inherited (removed, relabelled or replaced): the stats subtract what the parent counted for them, read from
the parent's own (immutable) files. Images that are the parent's inode under another label keep their hash and
header check (``image_hash``, ``image_checked``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Inheritance:
    parent_files: Path  # the parent version's files/ (never written)
    task: str
    parent_manifest: dict  # the parent's whole manifest: {"images": {key: [image_hash, label, classes]}}
    parent_stats: dict | None  # the parent's stats.json, None when it predates them
    keys: frozenset[str]  # inherited manifest keys
    inode_hashes: dict[int, str]  # inode -> content hash of every parent image (all on the data dir's device)

    @classmethod
    def scan(cls, parent_files: Path, staged_files: Path, *, task: str, manifest: dict,
             parent_stats: dict | None) -> Inheritance:
        parent_inodes, staged_inodes = _inodes(parent_files), _inodes(staged_files)
        keys, inode_hashes = set(), {}
        for key, (image_hash, _label, classes) in manifest["images"].items():
            image_rel = image_path(key, task=task, classes=classes)
            parent_image = parent_inodes.get(image_rel)
            if parent_image is None:
                continue
            inode_hashes[parent_image] = image_hash
            if staged_inodes.get(image_rel) != parent_image:
                continue
            if task == "classify" or staged_inodes.get(label_path(key)) == parent_inodes.get(label_path(key)):
                keys.add(key)
        return cls(parent_files, task, manifest, parent_stats, frozenset(keys), inode_hashes)

    def holds(self, key: str) -> bool:
        return key in self.keys

    def entry(self, key: str) -> list:
        return self.parent_manifest["images"][key]

    def instances(self, key: str) -> int | None:
        """The instances of an inherited key (checked when the parent registered), None for any other key."""
        if key not in self.keys:
            return None
        return sum(self.entry(key)[2].values())

    def gone(self) -> list[str]:
        return sorted(self.parent_manifest["images"].keys() - self.keys)

    def image_hash(self, path: Path) -> str | None:
        return self.inode_hashes.get(_inode(path))

    def image_checked(self, path: Path) -> bool:
        return _inode(path) in self.inode_hashes

    def inherited_hashes(self) -> dict[str, str]:
        """Path under files/ -> content hash of every inherited image."""
        images = self.parent_manifest["images"]
        return {image_path(key, task=self.task, classes=images[key][2]): images[key][0] for key in self.keys}


def image_path(key: str, *, task: str, classes: dict) -> str:
    """The image's path under files/ for a manifest key (classify: its class folder is its one class)."""
    split, _, name = key.partition("/")
    if task == "classify":
        return f"{split}/{next(iter(classes))}/{name}"
    return f"images/{split}/{name}"


def label_path(key: str) -> str:
    split, _, name = key.partition("/")
    return f"labels/{split}/{name.rsplit('.', 1)[0]}.txt"


def key_of(rel: str, *, task: str) -> str:
    """The manifest key of an image's path under files/."""
    parts = rel.split("/")
    return f"{parts[0]}/{'/'.join(parts[2:])}" if task == "classify" else "/".join(parts[1:])


def _inodes(folder: Path) -> dict[str, int]:
    """Path under ``folder`` -> inode of every file, from the directory listings alone (no stat per file)."""
    found, pending = {}, [("", str(folder))]
    while pending:
        prefix, path = pending.pop()
        try:
            listing = os.scandir(path)
        except OSError:
            continue
        with listing:
            for entry in listing:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((f"{prefix}{entry.name}/", entry.path))
                else:
                    found[f"{prefix}{entry.name}"] = entry.inode()
    return found


def _inode(path: Path) -> int | None:
    try:
        return os.lstat(path).st_ino
    except OSError:
        return None
