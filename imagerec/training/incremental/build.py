"""The run's own Ultralytics dataset for an incremental task, materialised in the run folder (child side).

    data/images/train        the new train images (+ pseudo-labels) and the replay set, linked not copied
    data/images/val_new      the new dataset's val images; labels in merged ids
    data/images/val_old      the replay sources' val images: where the old classes are measured
    data/train.yaml …        written by the server; training validates on val_new + val_old
    classify: data/train/<NNN-class>/, data/val/<NNN-class>/ (sorted folder order = merged ids)

``manifest.json`` records what went in (counts per class, pseudo-labels, eval sets) for the logs and the report.
A resumed task reuses the folder as it is.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from imagerec.training.context import DatasetInfo, RunContext
from imagerec.training.incremental.classes import ClassMerge
from imagerec.training.incremental.materialise import (
    LabelledItem,
    classify_folder_names,
    remap_label_lines,
    unique_name,
    write_classify_split,
    write_labelled_split,
)
from imagerec.training.incremental.pseudo_run import pseudo_label
from imagerec.training.incremental.replay import SourceImage, replay_budget, scan_split, select_replay
from imagerec.vision import VisionTask

log = logging.getLogger("imagerec.training.incremental")
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class BuiltData:
    root: Path
    data: str  # what train(data=…) gets
    manifest: dict[str, Any]


def _labelled_items(images: list[SourceImage], class_maps: dict[int, list[int]],
                    extra: dict[Path, list[str]] | None = None) -> list[LabelledItem]:
    items = []
    for index, image in enumerate(images):
        lines = remap_label_lines(image.label.read_text(), class_maps[image.source_id]) if image.label else []
        lines += (extra or {}).get(image.image, [])
        name = unique_name(index, image.source_id, image.image)
        items.append(LabelledItem(image=image.image, lines=lines, name=name))
    return items


def _class_counts(images: list[SourceImage], names: list[str]) -> dict[str, int]:
    counts = Counter(class_id for image in images for class_id in image.classes)
    return {names[class_id]: counts[class_id] for class_id in sorted(counts)}


def _scan(datasets: list[DatasetInfo], split: str, class_maps: dict[int, list[int]]) -> list[SourceImage]:
    return [image for d in datasets for image in scan_split(d.files_dir, split, d.task, class_maps[d.id], d.id)]


def _replay(ctx: RunContext, sources: list[DatasetInfo], class_maps: dict[int, list[int]], new_count: int,
            merge: ClassMerge) -> list[SourceImage]:
    settings = ctx.params["replay"]
    if not settings["enabled"]:
        return []
    candidates = _scan(sources, "train", class_maps)
    budget = replay_budget(max_images=settings["max_images"], ratio=settings["ratio"] or (
        None if settings["max_images"] else 1.0), new_count=new_count)
    selection = select_replay(candidates, budget=budget, min_per_class=settings["min_per_class"],
                              strategy=settings["strategy"], seed=ctx.params["seed"])
    per_class = {merge.names[c]: n for c, n in sorted(selection.per_class.items())}
    log.info(f"replay: {len(selection.images)} of {len(candidates)} old images ({settings['strategy']}, "
             f"budget {budget}); images per class: {per_class}")
    return selection.images


def _yaml(scratch: Path, name: str, *, train: str, val: list[str], ctx: RunContext, merge: ClassMerge) -> str:
    final_root = ctx.run_dir / "data"  # the scratch folder is renamed to it once complete
    content: dict[str, Any] = {"path": str(final_root), "train": train, "val": val,
                               "names": dict(enumerate(merge.names))}
    if ctx.task == VisionTask.pose:
        content["kpt_shape"] = list(ctx.dataset.kpt_shape)
        if ctx.dataset.flip_idx is not None:
            content["flip_idx"] = list(ctx.dataset.flip_idx)
    (scratch / name).write_text(yaml.safe_dump(content, sort_keys=False))
    return str(final_root / name)


def _write_detection(root: Path, ctx: RunContext, merge: ClassMerge, parts: dict[str, list[SourceImage]],
                     class_maps: dict[int, list[int]], pseudo: dict[Path, list[str]]) -> dict[str, Any]:
    links: Counter = Counter()
    for split, images in parts.items():
        items = _labelled_items(images, class_maps, pseudo if split == "train" else None)
        links.update(write_labelled_split(root, split, items))
    val = [f"images/{split}" for split in ("val_new", "val_old") if parts[split]]  # no old val without sources
    _yaml(root, "train.yaml", train="images/train", val=val, ctx=ctx, merge=merge)
    _yaml(root, "eval-new.yaml", train="images/train", val=["images/val_new"], ctx=ctx, merge=merge)
    if parts["val_old"]:
        _yaml(root, "eval-old.yaml", train="images/train", val=["images/val_old"], ctx=ctx, merge=merge)
    return {"links": dict(links)}


def _classify_items(images: list[SourceImage], offset: int = 0) -> list[tuple[Path, int, str]]:
    return [(image.image, next(iter(image.classes)), unique_name(offset + n, image.source_id, image.image))
            for n, image in enumerate(images)]


def _write_classify(root: Path, merge: ClassMerge, parts: dict[str, list[SourceImage]]) -> dict[str, Any]:
    links: Counter = Counter()
    links.update(write_classify_split(root, "train", _classify_items(parts["train"]), merge.names))
    val = _classify_items(parts["val_new"]) + _classify_items(parts["val_old"], offset=len(parts["val_new"]))
    links.update(write_classify_split(root, "val", val, merge.names))
    eval_sets = {name: [[str(image.image), next(iter(image.classes))] for image in parts[name]]
                 for name in ("val_new", "val_old")}
    return {"links": dict(links), "folders": classify_folder_names(merge.names), "eval_sets": eval_sets}


def build(ctx: RunContext, merge: ClassMerge) -> BuiltData:
    root = ctx.run_dir / "data"
    if (root / MANIFEST).is_file():  # resumed: the data the run started with
        return _built(ctx, root, json.loads((root / MANIFEST).read_text()))
    scratch = ctx.run_dir / "data.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    sources = ctx.datasets_by_role.get("replay_source", [])
    class_maps = {ctx.dataset.id: merge.new_to_merged} | {s.id: merge.map_for(s.class_names) for s in sources}
    new_train = _scan([ctx.dataset], "train", class_maps)
    replayed = _replay(ctx, sources, class_maps, len(new_train), merge)
    parts = {"train": new_train + replayed, "val_new": _scan([ctx.dataset], "val", class_maps),
             "val_old": _scan(sources, "val", class_maps)}
    manifest: dict[str, Any] = {
        "new_train_images": len(new_train), "replay_images": len(replayed),
        "replay_per_class": _class_counts(replayed, merge.names),
        "val_new_images": len(parts["val_new"]), "val_old_images": len(parts["val_old"]),
    }
    if ctx.task == VisionTask.classify:
        manifest |= _write_classify(scratch, merge, parts)
    else:
        pseudo, added = pseudo_label(ctx, merge, new_train, class_maps)
        manifest |= {"pseudo_labels": added}
        manifest |= _write_detection(scratch, ctx, merge, parts, class_maps, pseudo)
    (scratch / MANIFEST).write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(root, ignore_errors=True)  # a folder without a manifest is an unfinished build
    scratch.replace(root)
    return _built(ctx, root, manifest)


def _built(ctx: RunContext, root: Path, manifest: dict[str, Any]) -> BuiltData:
    data = str(root) if ctx.task == VisionTask.classify else str(root / "train.yaml")
    return BuiltData(root=root, data=data, manifest=manifest)
