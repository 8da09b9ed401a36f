"""What a dataset version holds, and what changed between two versions.

A version's manifest maps each image (``<split>/<name>``) to its content hash, the hash of its label file (for
classify: its class) and its instances per class. It is written when the version registers; its hash, with the
class list and keypoint shape, is the version's ``content_hash``, so two versions with the same content have the
same hash whatever their history. A diff compares two manifests: images added, removed, relabelled (same
content, other labels) and replaced (same name, other content), and the instances per class gained and lost.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from imagerec.datasets.validation import Metadata

MANIFEST_FILE = "manifest.json"
LISTED = 200  # names listed per kind of change; the counts are always whole


def build_manifest(files_dir: Path, *, task: str, metadata: Metadata, image_hashes: dict[str, str]) -> dict:
    """``image_hashes``: path under ``files_dir`` -> sha256 (from ``stats``)."""
    entries = {}
    for rel, image_hash in sorted(image_hashes.items()):
        parts = rel.split("/")
        if task == "classify":  # <split>/<class>/<name>
            key, label, classes = f"{parts[0]}/{'/'.join(parts[2:])}", parts[1], {parts[1]: 1}
        else:  # images/<split>/<name>
            key = "/".join(parts[1:])
            label, classes = _label_entry(files_dir, parts[1], "/".join(parts[2:]), metadata.class_names)
        entries[key] = [image_hash, label, classes]
    return {"images": entries}


def _label_entry(files_dir: Path, split: str, name: str, class_names: list[str]) -> tuple[str | None, dict]:
    label = files_dir / "labels" / split / f"{name.rsplit('.', 1)[0]}.txt"
    if not label.is_file():
        return None, {}
    content = label.read_bytes()
    counts: Counter[str] = Counter()
    for line in content.decode("utf-8-sig", errors="replace").splitlines():
        fields = line.split()
        if fields:
            counts[class_names[int(float(fields[0]))]] += 1
    return (hashlib.sha256(content).hexdigest() if counts else None), dict(sorted(counts.items()))


def content_hash(manifest: dict, metadata: Metadata) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([metadata.class_names, metadata.kpt_shape, metadata.flip_idx]).encode())
    for key, (image_hash, label, _) in sorted(manifest["images"].items()):
        digest.update(f"{key}\0{image_hash}\0{label}\n".encode())
    return digest.hexdigest()


def write_manifest(folder: Path, manifest: dict) -> None:
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, separators=(",", ":")))


def read_manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def diff(old: dict, new: dict) -> dict:
    """The changes from manifest ``old`` to manifest ``new``."""
    old_images, new_images = old["images"], new["images"]
    added = sorted(new_images.keys() - old_images.keys())
    removed = sorted(old_images.keys() - new_images.keys())
    common = sorted(old_images.keys() & new_images.keys())
    replaced = [key for key in common if old_images[key][0] != new_images[key][0]]
    relabelled = [key for key in common if old_images[key][0] == new_images[key][0]
                  and old_images[key][1] != new_images[key][1]]
    gained: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    for key in added:
        gained.update(new_images[key][2])
    for key in removed:
        lost.update(old_images[key][2])
    for key in replaced + relabelled:
        change = Counter(new_images[key][2])
        change.subtract(old_images[key][2])
        gained.update({name: count for name, count in change.items() if count > 0})
        lost.update({name: -count for name, count in change.items() if count < 0})
    changes = {"added": added, "removed": removed, "relabelled": relabelled, "replaced": replaced}
    return {
        "counts": {kind: len(keys) for kind, keys in changes.items()},
        **{kind: keys[:LISTED] for kind, keys in changes.items()},
        "instances": {name: {"gained": gained[name], "lost": lost[name]} for name in sorted(gained | lost)},
    }


def is_empty(changes: dict) -> bool:
    return not any(changes["counts"].values())
