"""Ultralytics/YOLO datasets in any layout their ``data.yaml`` describes, or with a ``classes.txt`` instead.

With a data YAML (``data.yaml``, ``dataset.yaml``, or another ``*.yaml`` at the top holding ``names``), read as
data with the safe loader; only ``path``, ``train``, ``val``, ``test``, ``names``, ``nc``, ``kpt_shape`` and
``flip_idx`` are used, and ``download:`` never runs. Each split is a folder of images, a ``.txt`` list of image
paths, or a list of those. Paths are resolved the way Ultralytics does: against ``path`` (itself relative to the
YAML's folder), retrying without a leading ``../`` (Roboflow writes ``train: ../train/images``); a list's
``./x`` lines are relative to the list's folder. Every path must stay inside the source folder, or it is an
error. A label is the image's path with its last ``images`` folder replaced by ``labels`` and a ``.txt`` suffix,
or, failing that, the ``.txt`` beside the image.

Without a YAML: ``classes.txt`` (LabelImg) or ``obj.names`` (CVAT "YOLO 1.1") gives the class names, labels sit
beside the images or in the matching ``labels`` folder, and a split is read from the folder names (``train``,
``val``/``valid``/``validation``, ``test``, CVAT's ``obj_train_data``); images in no split folder are split later.
Classification datasets are image folders (see ``imagefolder``).
"""

from __future__ import annotations

import posixpath
from pathlib import Path, PurePosixPath

import yaml

from imagerec.datasets.formats import imagefolder
from imagerec.datasets.formats.base import (
    SPLIT_WORDS,
    ExportSink,
    ExportSource,
    Imported,
    ImportOptions,
    Problems,
    Sample,
    SourceTree,
    label_lines,
)
from imagerec.datasets.layout import DATA_YAML_MAX_BYTES, DATA_YAML_NAMES, is_image_name
from imagerec.datasets.validation import Metadata, read_metadata
from imagerec.errors import Unprocessable

CLASS_LISTS = ("classes.txt", "obj.names")
LIST_MAX_BYTES = 64 * 1024 * 1024


class YoloImporter:
    def detect(self, tree: SourceTree, *, task: str) -> str | None:
        if task == "classify":
            return None
        found = _data_yaml(tree)
        if found is not None:
            return f"YOLO: {found[0]} describes the dataset"
        class_list = _class_list(tree)
        if class_list is not None:
            return f"YOLO: {class_list} lists the classes and .txt labels sit with the images"
        tops = {rel.partition("/")[0] for rel in tree.files}
        if {"images", "labels"} <= tops:
            return "YOLO: images/ and labels/ folders (but no data.yaml)"
        return None

    def read(self, tree: SourceTree, *, options: ImportOptions, problems: Problems) -> Imported:
        if options.task == "classify":
            return imagefolder.IMPORTER.read(tree, options=options, problems=problems)
        found = _data_yaml(tree)
        if found is not None:
            return _read_with_yaml(tree, found, options, problems)
        class_list = _class_list(tree)
        if class_list is None:
            raise Unprocessable(f"a {options.task} dataset needs a data.yaml with 'names' at its top level "
                                "(or a classes.txt listing the class names)")
        return _read_with_class_list(tree, class_list, options, problems)


IMPORTER = YoloImporter()


# --- with a data YAML -----------------------------------------------------------------------------------------


def _data_yaml(tree: SourceTree) -> tuple[str, dict] | None:
    """(name, parsed mapping) of the dataset's YAML at the top of the source."""
    top_yamls = sorted(rel for rel in tree.files if "/" not in rel and rel.lower().endswith((".yaml", ".yml")))
    named = [rel for rel in DATA_YAML_NAMES if rel in tree.files]
    for rel in named + [rel for rel in top_yamls if rel not in named]:
        data = _load_yaml(tree, rel)
        if isinstance(data, dict) and ("names" in data or rel in named):
            return rel, data
    return None


def _load_yaml(tree: SourceTree, rel: str) -> object:
    try:
        return yaml.safe_load(tree.read_text(rel, max_bytes=DATA_YAML_MAX_BYTES))
    except ValueError as error:  # too large
        raise Unprocessable(str(error)) from error
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise Unprocessable(f"{rel} is not valid YAML: {error}") from error


def _read_with_yaml(tree: SourceTree, found: tuple[str, dict], options: ImportOptions,
                    problems: Problems) -> Imported:
    yaml_rel, data = found
    content = yaml.safe_dump({key: data[key] for key in ("names", "nc", "kpt_shape", "flip_idx") if key in data})
    metadata = read_metadata(task=options.task, data_yaml=(yaml_rel, content.encode()), files_dir=Path())
    metadata = _with_requested_keypoints(metadata, options)
    base = _base_folder(tree, yaml_rel, data.get("path"))
    if data.get("train") is None:
        return Imported(metadata=metadata, samples=_standard_layout(tree, base, problems))
    samples: list[Sample] = []
    seen: set[tuple[str, str]] = set()
    for split in ("train", "val", "test"):
        for entry in _entries(data.get(split), yaml_rel, split):
            for image_rel, name in _split_images(tree, base, entry, (yaml_rel, split), problems):
                if (split, image_rel) not in seen:
                    seen.add((split, image_rel))
                    samples.append(_sample(tree, image_rel, name, split))
    return Imported(metadata=metadata, samples=samples)


def _standard_layout(tree: SourceTree, base: str, problems: Problems) -> list[Sample]:
    """A YAML without ``train``: the layout is ``images/<split>`` below it (``val`` and ``test`` optional)."""
    prefix = f"{base}/" if base else ""
    samples = []
    for split in ("train", "val", "test"):
        folder = f"{prefix}images/{split}"
        images = _images_below(tree, folder)
        if split == "train" and not images:
            problems.error(folder.removeprefix(prefix), "required folder is missing (or holds no images)")
        samples += [_sample(tree, rel, rel[len(folder) + 1:], split) for rel in images]
    return samples


def _with_requested_keypoints(metadata: Metadata, options: ImportOptions) -> Metadata:
    if options.kpt_shape is None:
        return metadata
    return Metadata(metadata.class_names, kpt_shape=options.kpt_shape, flip_idx=options.flip_idx)


def _entries(raw: object, yaml_rel: str, split: str) -> list[str]:
    if raw is None:
        return []
    values = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(value, str) and value.strip() for value in values):
        raise Unprocessable(f"{yaml_rel}: '{split}' must be a path or a list of paths")
    return [value.strip() for value in values]


def _base_folder(tree: SourceTree, yaml_rel: str, raw_path: object) -> str:
    """``path`` as a folder relative to the source root ('' for the root itself)."""
    yaml_dir = posixpath.dirname(yaml_rel)
    if raw_path is None or raw_path == "":
        return yaml_dir
    if not isinstance(raw_path, str):
        raise Unprocessable(f"{yaml_rel}: 'path' must be a string")
    inside = _inside(tree, raw_path, yaml_dir)
    if inside is None:
        # A path written on the machine that exported it (an absolute path, or one above the YAML) says nothing
        # about this upload: the YAML's own folder is where its relative paths start.
        return yaml_dir
    return inside


def _inside(tree: SourceTree, raw: str, start: str) -> str | None:
    """``raw`` (absolute, or relative to ``start``) as a path relative to the source root; None outside it."""
    if raw.startswith("/"):
        try:
            return PurePosixPath(raw).relative_to(tree.root.as_posix()).as_posix().strip(".")
        except ValueError:
            return None
    joined = posixpath.normpath(posixpath.join(start, raw)) if start else posixpath.normpath(raw)
    if joined == ".":
        return ""
    return None if joined == ".." or joined.startswith("../") else joined


def _split_images(tree: SourceTree, base: str, entry: str, where: tuple[str, str], problems: Problems
                  ) -> list[tuple[str, str]]:
    """(image path, name inside the split) of every image a split entry names."""
    candidates = [_inside(tree, entry, base)]
    if entry.startswith("../"):
        candidates.append(_inside(tree, entry[3:], base))
    for rel in candidates:
        if rel is None:
            continue
        if rel in tree.files and rel.endswith(".txt"):
            return [(image, _name_in_split(image)) for image in _listed_images(tree, rel, problems)]
        images = _images_below(tree, rel)
        if images:
            return [(image, image[len(rel) + 1:] if rel else image) for image in images]
    yaml_rel, split = where
    leaves = all(rel is None for rel in candidates)
    if leaves or split == "train":
        problem = "leaves the dataset folder" if leaves else "holds no images"
        problems.error(yaml_rel, f"'{split}' path {entry!r} {problem}")
    else:  # the split is then made from train (see ``splitting``)
        problems.warn(f"{yaml_rel}: '{split}' path {entry!r} holds no images")
    return []


def _images_below(tree: SourceTree, folder: str) -> list[str]:
    prefix = f"{folder}/" if folder else ""
    return sorted(rel for rel in tree.images() if rel.startswith(prefix))


def _listed_images(tree: SourceTree, list_rel: str, problems: Problems) -> list[str]:
    list_dir = posixpath.dirname(list_rel)
    images = []
    text = tree.read_text(list_rel, max_bytes=LIST_MAX_BYTES)
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        rel = _inside(tree, line[2:] if line.startswith("./") else line, list_dir)
        if rel is None or rel not in tree.files:
            fallback = _inside(tree, line, "") if not line.startswith("./") else None
            rel = fallback if fallback in tree.files else None
        if rel is None:
            problems.error(list_rel, f"{line!r} is not an image inside the dataset folder", line=number)
        elif is_image_name(rel):
            images.append(rel)
    return images


def _sample(tree: SourceTree, image_rel: str, name: str, split: str | None) -> Sample:
    label = _label_for(tree, image_rel)
    return Sample(name=name, split=split, image=tree.get(image_rel),
                  label_file=tree.get(label) if label else None, source=image_rel)


def _label_for(tree: SourceTree, image_rel: str) -> str | None:
    stem = image_rel.rsplit(".", 1)[0]
    slashed = f"/{stem}"
    if "/images/" in slashed:
        head, _, tail = slashed.rpartition("/images/")
        swapped = f"{head}/labels/{tail}.txt".lstrip("/")
        if swapped in tree.files:
            return swapped
    beside = f"{stem}.txt"
    return beside if beside in tree.files else None


def _name_in_split(image_rel: str) -> str:
    """A listed image's path below its last ``images`` folder (and a split folder right below it), else below
    its last split folder, else its base name."""
    parts = image_rel.split("/")
    folders = parts[:-1]
    if "images" in folders:
        below = parts[len(folders) - folders[::-1].index("images"):]
        return "/".join(below[1:] if len(below) > 1 and below[0] in SPLIT_WORDS else below)
    for index in range(len(folders) - 1, -1, -1):
        if folders[index] in SPLIT_WORDS:
            return "/".join(parts[index + 1:])
    return parts[-1]


# --- with classes.txt -----------------------------------------------------------------------------------------


def _class_list(tree: SourceTree) -> str | None:
    found = sorted((rel for rel in tree.files if rel.rpartition("/")[2] in CLASS_LISTS), key=lambda r: r.count("/"))
    return found[0] if found else None


def _read_with_class_list(tree: SourceTree, class_list: str, options: ImportOptions,
                          problems: Problems) -> Imported:
    names = [line.strip() for line in tree.read_text(class_list, max_bytes=DATA_YAML_MAX_BYTES).splitlines()]
    names = [name for name in names if name]
    if not names:
        raise Unprocessable(f"{class_list} lists no class names")
    if options.task == "pose" and options.kpt_shape is None:
        raise Unprocessable("a pose dataset without a data.yaml needs 'kpt_shape' in the request")
    metadata = Metadata(names, kpt_shape=options.kpt_shape, flip_idx=options.flip_idx)
    samples = [_sample(tree, rel, _name_in_split(rel), _split_of(rel)) for rel in sorted(tree.images())]
    if not samples:
        problems.error(class_list, "the dataset folder holds no images")
    return Imported(metadata=metadata, samples=samples)


def _split_of(image_rel: str) -> str | None:
    for part in image_rel.split("/")[:-1]:
        word = part.lower()
        if word.startswith("obj_") and word.endswith("_data"):  # CVAT: obj_train_data, obj_valid_data
            word = word[4:-5]
        if word in SPLIT_WORDS:
            return SPLIT_WORDS[word]
    return None


# --- export ---------------------------------------------------------------------------------------------------


def export(source: ExportSource, sink: ExportSink) -> None:
    """The Ultralytics layout with a data.yaml naming its splits; classification as image folders."""
    if source.task == "classify":
        imagefolder.export(source, sink)
        return
    splits: set[str] = set()
    for sample in source.samples():
        splits.add(sample.split)
        sink.add_file(f"images/{sample.split}/{sample.name}", sample.image)
        text = "\n".join(label_lines(sample, task=source.task))
        sink.add_bytes(f"labels/{sample.split}/{sample.name.rsplit('.', 1)[0]}.txt",
                       (text + "\n" if text else "").encode())
    data: dict = {"path": ".", **{split: f"images/{split}" for split in ("train", "val", "test") if split in splits}}
    data["names"] = dict(enumerate(source.metadata.class_names))
    if source.metadata.kpt_shape:
        data["kpt_shape"] = source.metadata.kpt_shape
        if source.metadata.flip_idx:
            data["flip_idx"] = source.metadata.flip_idx
    sink.add_bytes("data.yaml", yaml.safe_dump(data, sort_keys=False).encode())
