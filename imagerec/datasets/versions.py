"""What a dataset version holds, and what changed between two versions.

A version's manifest maps each image (``<split>/<name>``) to its content hash, the hash of its label file (for
classify: its class) and its instances per class. It is written when the version registers; its hash, with the
class list and keypoint shape, is the version's ``content_hash``, so two versions with the same content have the
same hash whatever their history. A diff compares two manifests: images added, removed, relabelled (same
content, other labels) and replaced (same name, other content), and the instances per class gained and lost.

A version's ``manifest.json`` is stored as a delta on its parent's (``{"base": <parent folder>, "set": {...},
"removed": [...]}``), so a version adding 1 % writes about 1 % of a manifest; ``read_manifest`` follows the
chain of bases. Before a version's folder is removed, its children's manifests are written whole
(``materialise``), so no chain ever points at a removed folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path

from imagerec.datasets.inheritance import Inheritance, key_of
from imagerec.datasets.validation import Metadata

MANIFEST_FILE = "manifest.json"
LISTED = 200  # names listed per kind of change; the counts are always whole


def build_manifest(files_dir: Path, *, task: str, metadata: Metadata, image_hashes: dict[str, str],
                   inherited: Inheritance | None = None) -> dict:
    """``image_hashes``: path under ``files_dir`` -> sha256 (from ``stats``); ``inherited`` keys take their
    parent's entries, their labels unread."""
    entries = {}
    for rel, image_hash in sorted(image_hashes.items()):
        key, parts = key_of(rel, task=task), rel.split("/")
        if inherited is not None and inherited.holds(key):
            entries[key] = inherited.entry(key)
            continue
        if task == "classify":  # <split>/<class>/<name>
            label, classes = parts[1], {parts[1]: 1}
        else:  # images/<split>/<name>
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


def write_manifest(folder: Path, manifest: dict, *, base: tuple[str, dict] | None = None) -> None:
    """The whole ``manifest``, or with ``base`` (the parent's folder name and manifest) only what differs."""
    stored = manifest if base is None else _delta(manifest, base_name=base[0], base_manifest=base[1])
    temporary = folder / f".{MANIFEST_FILE}.tmp"
    temporary.write_text(json.dumps(stored, separators=(",", ":")))
    os.replace(temporary, folder / MANIFEST_FILE)


def _delta(manifest: dict, *, base_name: str, base_manifest: dict) -> dict:
    old, new = base_manifest["images"], manifest["images"]
    return {"base": base_name, "set": {key: entry for key, entry in new.items() if old.get(key) != entry},
            "removed": sorted(old.keys() - new.keys())}


def read_manifest(folder: Path) -> dict | None:
    """The whole manifest of the version in ``folder``, its chain of deltas applied; None when it has none."""
    chain = []
    while True:
        path = folder / MANIFEST_FILE
        if not path.is_file():
            if chain:
                raise FileNotFoundError(f"manifest base {folder.name} of a dataset version is missing")
            return None
        stored = json.loads(path.read_text())
        chain.append(stored)
        if "base" not in stored:
            break
        if not stored["base"].isalnum():  # a folder name the server wrote; never a path
            raise ValueError(f"manifest base {stored['base']!r} is not a dataset folder name")
        folder = folder.parent / stored["base"]
    images = chain.pop()["images"]
    for delta in reversed(chain):
        for key in delta["removed"]:
            images.pop(key, None)
        images.update(delta["set"])
    return {"images": dict(sorted(images.items()))}


def materialise(folder: Path) -> None:
    """Store the manifest in ``folder`` whole (its base is about to be removed)."""
    manifest = read_manifest(folder)
    if manifest is not None:
        write_manifest(folder, manifest)


def release_base(folder: Path) -> None:
    """Write whole the manifests of the versions stored as deltas on ``folder``'s, which is about to be removed."""
    for sibling in sorted(folder.parent.iterdir()):
        if sibling != folder and base_of(sibling) == folder.name:
            materialise(sibling)


def base_of(folder: Path) -> str | None:
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return None
    with open(path, "rb") as file:  # a delta starts with its base; a whole manifest's file can be large
        head = file.read(200).decode("utf-8", errors="replace")
    prefix = '{"base":"'
    return head[len(prefix):].partition('"')[0] if head.startswith(prefix) else None


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
