"""Tiny learnable datasets for every vision task: bright shapes on noise, deterministic by seed.

Tests and demos use these instead of downloading anything. The layout is Ultralytics' own, so a folder written
here can be zipped and uploaded like a user's dataset::

    detect / segment / pose   images/{train,val}/*.jpg|png, labels/{train,val}/*.txt, data.yaml
    classify                  train/<class>/*.png, val/<class>/*.png

Shapes take 15–40 % of the image side; yolov8n learns something from them within a few epochs.
Pose datasets hold triangles whose corners (top, left, right) are the keypoints, so ``flip_idx`` is [0, 2, 1].

Two more kinds, "cross" and "diamond", are drawn only on request (``classes``/``hidden``): incremental-training
tests add them as new classes. ``hidden`` kinds are drawn but never labelled, as new data in the wild holds
old-class objects nobody labelled.

``DEMO_SIZES`` is what the README's quick start trains on (``imagerec demo-data``'s defaults): 256 images at
128 px, which the API's regular training turns into a yolov8n that finds nearly every shape at conf 0.25 in 1–2.5
minutes on 2 CPU cores. At the 64-px test defaults the shapes are 10–25 px, and with the settings the API leaves
at Ultralytics' defaults (mosaic on, one optimizer step per 64 images) a few dozen of them teach a model nothing
in that time.

CLI: ``imagerec demo-data`` (see ``imagerec.cli``), or the original
``python -m imagerec.datasets.synthetic --task detect --out DIR [--zip] [--train N --val N --imgsz N --seed N]
[--classes KIND ...] [--hidden KIND ...]`` with the small test-sized defaults.
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from PIL import Image, ImageDraw

SHAPES = ["square", "circle", "triangle"]
EXTRA_SHAPES = ["cross", "diamond"]  # never in the defaults: adding them would change every default dataset
POSE_NAMES = ["triangle"]
POSE_KPT_SHAPE = [3, 3]
POSE_FLIP_IDX = [0, 2, 1]  # corners are ordered top, left, right: a horizontal flip swaps left and right
CIRCLE_SIDES = 12
CROSS_ARM = 1 / 6  # half the thickness of a cross's bars, as a fraction of its size
IMAGE_SUFFIX = {"detect": ".jpg", "segment": ".png", "pose": ".jpg", "classify": ".png"}
DEMO_SIZES = dict(train=256, val=16, imgsz=128)  # the quick start's dataset; measured in README.md


@dataclass(frozen=True)
class Shape:
    """One drawn object; ``points`` are pixel corners of its polygon (the circle as a 12-gon)."""

    kind: str
    points: list[tuple[float, float]]

    def box(self) -> tuple[float, float, float, float]:
        xs, ys = [x for x, _ in self.points], [y for _, y in self.points]
        return min(xs), min(ys), max(xs), max(ys)


def _polygon(kind: str, cx: float, cy: float, size: float, rng: random.Random) -> list[tuple[float, float]]:
    half = size / 2
    if kind == "square":
        return [(cx - half, cy - half), (cx + half, cy - half), (cx + half, cy + half), (cx - half, cy + half)]
    if kind == "circle":
        steps = [2 * math.pi * i / CIRCLE_SIDES for i in range(CIRCLE_SIDES)]
        return [(cx + half * math.cos(a), cy + half * math.sin(a)) for a in steps]
    if kind == "diamond":
        return [(cx, cy - half), (cx + half, cy), (cx, cy + half), (cx - half, cy)]
    if kind == "cross":
        return _cross(cx, cy, half, CROSS_ARM * 2 * half)
    if kind != "triangle":
        raise ValueError(f"unknown shape {kind!r}; expected one of {SHAPES + EXTRA_SHAPES}")
    apex_x = cx + rng.uniform(-0.3, 0.3) * half  # a little skew so keypoints are not fixed relative to the box
    return [(apex_x, cy - half), (cx - half, cy + half), (cx + half, cy + half)]  # top, left, right


def _cross(cx: float, cy: float, half: float, arm: float) -> list[tuple[float, float]]:
    """A plus sign: twelve corners clockwise from the top bar's left edge."""
    corners = [(-arm, -half), (arm, -half), (arm, -arm), (half, -arm), (half, arm), (arm, arm),
               (arm, half), (-arm, half), (-arm, arm), (-half, arm), (-half, -arm), (-arm, -arm)]
    return [(cx + dx, cy + dy) for dx, dy in corners]


def _place_shapes(kinds: list[str], imgsz: int, rng: random.Random) -> list[Shape]:
    """Non-overlapping shapes; gives up on one after a few tries rather than loop forever."""
    shapes: list[Shape] = []
    boxes: list[tuple[float, float, float, float]] = []
    for kind in kinds:
        for _ in range(30):
            size = rng.uniform(0.15, 0.4) * imgsz
            cx = rng.uniform(size / 2 + 1, imgsz - size / 2 - 1)
            cy = rng.uniform(size / 2 + 1, imgsz - size / 2 - 1)
            shape = Shape(kind, _polygon(kind, cx, cy, size, rng))
            box = shape.box()
            if all(_apart(box, other) for other in boxes):
                shapes.append(shape)
                boxes.append(box)
                break
    return shapes


def _apart(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[2] + 2 < b[0] or b[2] + 2 < a[0] or a[3] + 2 < b[1] or b[3] + 2 < a[1]


def _draw(shapes: list[Shape], imgsz: int, rng: random.Random) -> Image.Image:
    noise = bytes(rng.randrange(40, 110) for _ in range(imgsz * imgsz * 3))
    image = Image.frombytes("RGB", (imgsz, imgsz), noise)
    draw = ImageDraw.Draw(image)
    for shape in shapes:
        colour = tuple(rng.randrange(170, 256) for _ in range(3))
        draw.polygon(shape.points, fill=colour)
    return image


def _label_line(task: str, class_id: int, shape: Shape, imgsz: int) -> str:
    def norm(value: float) -> float:
        return min(max(value / imgsz, 0.0), 1.0)

    x1, y1, x2, y2 = shape.box()
    box = [norm((x1 + x2) / 2), norm((y1 + y2) / 2), norm(x2 - x1), norm(y2 - y1)]
    if task == "segment":
        values = [norm(c) for point in shape.points for c in point]
    elif task == "pose":
        values = box + [v for x, y in shape.points for v in (norm(x), norm(y), 2)]
    else:
        values = box
    return " ".join([str(class_id)] + [f"{v:.6f}" if isinstance(v, float) else str(v) for v in values])


def _write_labelled_split(task: str, out_dir: Path, split: str, count: int, backgrounds: int, imgsz: int,
                          rng: random.Random, names: list[str], hidden: list[str]) -> None:
    (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
    (out_dir / "labels" / split).mkdir(parents=True, exist_ok=True)
    for index in range(count + backgrounds):
        stem = f"{split}_{index:04d}"
        kinds = [] if index >= count else [rng.choice(names) for _ in range(rng.randint(1, 3))]
        if kinds and hidden:  # drawn only when asked for, so default datasets keep their random sequence
            kinds += [rng.choice(hidden) for _ in range(rng.randint(0, 2))]
        shapes = _place_shapes(kinds, imgsz, rng)
        _draw(shapes, imgsz, rng).save(out_dir / "images" / split / f"{stem}{IMAGE_SUFFIX[task]}")
        labelled = [s for s in shapes if s.kind in names]
        if labelled:
            lines = [_label_line(task, names.index(s.kind), s, imgsz) for s in labelled]
            (out_dir / "labels" / split / f"{stem}.txt").write_text("\n".join(lines) + "\n")


def _write_classify_split(out_dir: Path, split: str, count: int, imgsz: int, rng: random.Random,
                          names: list[str]) -> None:
    for index in range(count):
        kind = names[index % len(names)]  # round robin: every class appears in every split
        folder = out_dir / split / kind
        folder.mkdir(parents=True, exist_ok=True)
        shapes = _place_shapes([kind], imgsz, rng)
        _draw(shapes, imgsz, rng).save(folder / f"{split}_{index:04d}.png")


def _data_yaml(task: str, names: list[str]) -> dict:
    data: dict = {"train": "images/train", "val": "images/val", "names": list(names)}
    if task == "pose":
        data |= {"kpt_shape": POSE_KPT_SHAPE, "flip_idx": POSE_FLIP_IDX}
    return data


def class_names(task: str) -> list[str]:
    """The class names a dataset written for ``task`` has (what registration should report)."""
    return list(POSE_NAMES if task == "pose" else SHAPES)


def write_dataset(task: str, out_dir: Path, *, train: int = 16, val: int = 8, imgsz: int = 64, seed: int = 0,
                  backgrounds: int = 0, classes: list[str] | None = None, hidden: list[str] | None = None) -> Path:
    """Write a dataset for ``task`` into ``out_dir`` (created); returns ``out_dir``.

    ``backgrounds`` extra images without objects or label files are added to each labelled split.
    ``classes``: the shape kinds labelled, class id = index (default ``class_names(task)``; pose: triangle only).
    ``hidden``: kinds drawn (0–2 per image, besides the 1–3 labelled ones) but never labelled; classify ignores it.
    """
    if task not in IMAGE_SUFFIX:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(IMAGE_SUFFIX)}")
    names, hidden = _checked_kinds(task, classes, hidden)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{task}:{seed}")
    for split, count in (("train", train), ("val", val)):
        if task == "classify":
            _write_classify_split(out_dir, split, count, imgsz, rng, names)
        else:
            _write_labelled_split(task, out_dir, split, count, backgrounds, imgsz, rng, names, hidden)
    if task != "classify":
        (out_dir / "data.yaml").write_text(yaml.safe_dump(_data_yaml(task, names), sort_keys=False))
    return out_dir


def _checked_kinds(task: str, classes: list[str] | None, hidden: list[str] | None) -> tuple[list[str], list[str]]:
    names = list(classes) if classes is not None else class_names(task)
    hidden = [] if task == "classify" else list(hidden or [])
    known = SHAPES + EXTRA_SHAPES
    unknown = [kind for kind in names + hidden if kind not in known]
    if unknown:
        raise ValueError(f"unknown shape {unknown[0]!r}; expected some of {known}")
    if not names or len(set(names)) != len(names):
        raise ValueError(f"classes must be distinct shape kinds, at least one; got {names}")
    if task == "pose" and names != POSE_NAMES:
        raise ValueError(f"pose datasets hold only {POSE_NAMES} (their corners are the keypoints); got {names}")
    if set(names) & set(hidden):
        raise ValueError(f"a kind cannot be both labelled and hidden: {sorted(set(names) & set(hidden))}")
    return names, hidden


def zip_folder(folder: Path, zip_path: Path) -> Path:
    """Zip ``folder``'s contents with members relative to it (no top folder)."""
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return zip_path


def write_dataset_zip(task: str, zip_path: Path, **kwargs) -> Path:
    """``write_dataset`` into a zip at ``zip_path``; takes the same keyword arguments."""
    with tempfile.TemporaryDirectory(prefix="imagerec-synthetic-") as scratch:
        folder = write_dataset(task, Path(scratch) / "dataset", **kwargs)
        return zip_folder(folder, zip_path)


def add_options(parser: argparse.ArgumentParser, *, train: int, val: int, imgsz: int) -> None:
    """The generator's keyword options as command-line flags, with the given size defaults."""
    parser.add_argument("--train", type=int, default=train, help=f"labelled training images (default {train})")
    parser.add_argument("--val", type=int, default=val, help=f"labelled validation images (default {val})")
    parser.add_argument("--imgsz", type=int, default=imgsz, help=f"image side in pixels (default {imgsz})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backgrounds", type=int, default=0, help="extra unlabelled images per split")
    parser.add_argument("--classes", nargs="+", help="shape kinds to label, in class id order")
    parser.add_argument("--hidden", nargs="+", help="shape kinds drawn but never labelled")


def options_from(args: argparse.Namespace) -> dict:
    """``write_dataset``'s keyword arguments from flags added by ``add_options``."""
    return dict(train=args.train, val=args.val, imgsz=args.imgsz, seed=args.seed, backgrounds=args.backgrounds,
                classes=args.classes, hidden=args.hidden)


def write(task: str, out: Path, *, as_zip: bool, **options) -> Path:
    """A folder at ``out``, or a zip there with ``as_zip``; returns ``out``."""
    return write_dataset_zip(task, out, **options) if as_zip else write_dataset(task, out, **options)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a tiny synthetic dataset (shapes on noise).")
    parser.add_argument("--task", required=True, choices=sorted(IMAGE_SUFFIX))
    parser.add_argument("--out", required=True, type=Path, help="folder to write (or the zip file with --zip)")
    parser.add_argument("--zip", action="store_true", help="write a zip instead of a folder")
    add_options(parser, train=16, val=8, imgsz=64)
    args = parser.parse_args(argv)
    print(write(args.task, args.out, as_zip=args.zip, **options_from(args)))


if __name__ == "__main__":
    main()
