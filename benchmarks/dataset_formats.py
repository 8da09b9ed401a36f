"""COCO at scale: import a generated 20k-image, 200k-instance COCO folder, export it, add 1 % as a new version.

    .venv/bin/python benchmarks/dataset_formats.py [--images 20000] [--per-image 10] [--added 0.01] [--size 48]
        [--seed 0] [--work DIR] [--out benchmarks/out/dataset_formats.json]

1. Generate (in this process, not measured) ``--images`` distinct JPEGs of ``--size`` px in
   ``source/v1/images/{train,val}/`` (9 : 1) with ``annotations/instances_{train,val}.json``: ``--per-image``
   boxes each (in pixels, inside the image), 5 categories with non-contiguous ids, written in COCO's own order
   (info, licenses, images, annotations, categories). Then ``--added`` × as many new images, with their own
   ``instances_train.json``, in ``source/added/``.
2. Every phase runs in a fresh child process (``--phase``) that calls the services the routes call. It has no
   executor, so the work runs in that process; a server hands an import of 5000 images or more to a
   ``dataset_import`` task, whose child runs the same ``service.stage_new``.
   - baseline: imports (the COCO format included), engine, migrations: what every phase pays before its work;
   - import: ``service.import_path`` of ``source/v1`` (images linked in place, labels written) and its commit;
   - export: ``export.write_export(..., fmt=coco)`` of that dataset, the zip users download;
   - version: ``versioning.create_version(path=source/added)`` and its commit.
   Each child reports the work's wall seconds, its peak RSS (``ru_maxrss``), the bytes its write calls passed
   (``wchar`` of /proc/self/io: the database and the work folders included) and the seconds spent in each
   registration step (the step functions are wrapped with a timer).
3. What a version stores: the files in its storage folder that are neither symlinks nor hard links shared with
   another version (``st_nlink`` 1), in allocated blocks and in file sizes. The first version is measured the
   same way right after its import, before the new version links to its files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

CATEGORIES = [(3, "person"), (7, "car"), (12, "dog"), (20, "bicycle"), (41, "cup")]  # ids not 1…n on purpose
VAL_EVERY = 10  # every tenth image is a val image
PHASES = ("baseline", "import", "export", "version")
DATASET_NAME = "coco-scale"
WRITTEN_WHOLE = ("stats.json", "manifest.json")  # beside files/: every version writes its own (a later one
# stores its manifest as a delta on its parent's)


# --- generating the source folders (parent process) --------------------------------------------------------


def write_coco_folder(root: Path, *, first: int, count: int, per_image: int, size: int, seed: int,
                      splits: tuple[str, ...]) -> None:
    """``count`` images numbered from ``first``; with two splits every tenth image goes to the second."""
    rng = random.Random(seed)
    (root / "annotations").mkdir(parents=True)
    writers = {split: _CocoWriter(root / "annotations" / f"instances_{split}.json") for split in splits}
    for index in range(first, first + count):
        split = splits[-1] if len(splits) > 1 and index % VAL_EVERY == VAL_EVERY - 1 else splits[0]
        boxes = [_random_box(rng, size) for _ in range(per_image)]
        name = f"{index:06d}.jpg"
        _write_image(root / "images" / split / name, boxes=boxes, size=size, rng=rng)
        writers[split].add(image_id=index + 1, file_name=name, size=size, boxes=boxes, rng=rng)
    for writer in writers.values():
        writer.close()


def _random_box(rng: random.Random, size: int) -> tuple[int, int, int, int]:
    width, height = rng.randint(4, size // 2), rng.randint(4, size // 2)
    return rng.randint(0, size - width), rng.randint(0, size - height), width, height


def _write_image(path: Path, *, boxes: list[tuple[int, int, int, int]], size: int, rng: random.Random) -> None:
    from PIL import Image, ImageDraw

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for x, y, width, height in boxes:  # random colours: no two images share their bytes (no duplicate warnings)
        draw.rectangle((x, y, x + width - 1, y + height - 1), fill=tuple(rng.randrange(256) for _ in range(3)))
    image.save(path, quality=90)


class _CocoWriter:
    """One annotation file written as it goes: images here, annotations in a side file appended at the end."""

    def __init__(self, path: Path):
        self.path = path
        self.images = path.open("w")
        self.annotations = path.with_suffix(".annotations.part").open("w+")
        self.images.write('{"info": {"description": "imagerec benchmark"}, "licenses": [], "images": [')
        self.image_count = self.annotation_count = 0

    def add(self, *, image_id: int, file_name: str, size: int, boxes: list, rng: random.Random) -> None:
        entry = {"id": image_id, "file_name": file_name, "width": size, "height": size}
        self.images.write(("," if self.image_count else "") + json.dumps(entry))
        self.image_count += 1
        for x, y, width, height in boxes:
            self.annotation_count += 1
            annotation = {"id": self.annotation_count, "image_id": image_id, "category_id": rng.choice(CATEGORIES)[0],
                          "bbox": [x, y, width, height], "area": width * height, "iscrowd": 0, "segmentation": []}
            self.annotations.write(("," if self.annotation_count > 1 else "") + json.dumps(annotation))

    def close(self) -> None:
        self.images.write('], "annotations": [')
        self.annotations.seek(0)
        shutil.copyfileobj(self.annotations, self.images)
        categories = [{"id": category_id, "name": name, "supercategory": "none"} for category_id, name in CATEGORIES]
        self.images.write(f'], "categories": {json.dumps(categories)}}}')
        self.images.close()
        self.annotations.close()
        Path(self.annotations.name).unlink()


# --- the phases (child processes) ----------------------------------------------------------------------------


def run_phase(phase: str, work: Path) -> dict:
    from imagerec.db import make_engine, make_session_factory

    settings = phase_settings(work)
    settings.ensure_dirs()
    from imagerec.migrations import upgrade

    upgrade(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url)
    factory = make_session_factory(engine)
    import_modules()
    spent: dict[str, float] = {}
    peaks: dict[str, float] = {}
    time_steps(spent, peaks)
    rss_before, wchar_before = peak_rss_mib(), wchar()
    started = time.monotonic()
    result = PHASE_WORK[phase](settings, factory, work)
    seconds = time.monotonic() - started
    engine.dispose()
    return {"phase": phase, "seconds": round(seconds, 3), "peak_rss_mib": peak_rss_mib(),
            "rss_before_work_mib": rss_before, "written_mib": round((wchar() - wchar_before) / 2**20, 2),
            "steps_s": {name: round(value, 3) for name, value in spent.items()},
            "peak_rss_after_step_mib": peaks, **result}


def phase_settings(work: Path):
    from imagerec.config import Settings

    return Settings(data_dir=work / "data", allowed_roots=[work / "source"], default_workers=0)


def import_modules() -> None:
    """Everything the phases call, so the baseline holds it too: a phase's RSS above it is its work."""
    from imagerec.datasets import export, service, versioning  # noqa: F401
    from imagerec.datasets.formats import coco  # noqa: F401


def time_steps(spent: dict[str, float], peaks: dict[str, float]) -> None:
    """Wrap the registration steps (called through their modules' attributes) with a timer; ``peaks`` gets the
    peak RSS when each step returned (a peak that rises at a step was reached inside it)."""
    from imagerec.datasets import registration, service, staging, stats, validation, versions
    from imagerec.datasets.formats import coco_export
    from imagerec.datasets.inheritance import Inheritance

    for owner, name in ((registration, "read_source"), (staging, "write_samples"), (validation, "validate"),
                        (stats, "compute_stats"), (stats, "update_stats"), (Inheritance, "scan"),
                        (versions, "build_manifest"), (versions, "write_manifest"), (registration, "link_tree"),
                        (service, "manifest"), (versions, "diff"), (coco_export._Document, "write")):
        setattr(owner, name, _timed(getattr(owner, name), name, spent, peaks))


def _timed(function: Callable, name: str, spent: dict[str, float], peaks: dict[str, float]) -> Callable:
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - started
            peaks[name] = peak_rss_mib()

    return timed


def do_baseline(settings, factory, work: Path) -> dict:
    return {}


def do_import(settings, factory, work: Path) -> dict:
    from imagerec.datasets import service
    from imagerec.db import unit_of_work

    with unit_of_work(factory) as session:
        dataset = service.import_path(session=session, settings=settings, name=DATASET_NAME, task="detect",
                                      path=str(work / "source" / "v1"))
    return {"dataset_id": dataset.id, "summary_splits": dataset.summary.get("splits"),
            "stored": stored_bytes(service.storage_dir(settings, dataset))}


def do_export(settings, factory, work: Path) -> dict:
    from imagerec.datasets import archive, export, service
    from imagerec.datasets.formats import DatasetFormat
    from imagerec.db import read_session

    with read_session(factory) as session:
        dataset = service.get_or_404(session, dataset_id=read_state(work)["v1"])
    zip_path = export.write_export(settings, dataset, files_dir=service.files_dir(settings, dataset),
                                   fmt=DatasetFormat.coco)
    zip_bytes = zip_path.stat().st_size
    archive.remove_tree(zip_path.parent)
    return {"zip_mib": round(zip_bytes / 2**20, 2)}


def do_version(settings, factory, work: Path) -> dict:
    from imagerec.datasets import service, versioning
    from imagerec.db import unit_of_work

    with unit_of_work(factory) as session:
        parent = service.get_or_404(session, dataset_id=read_state(work)["v1"])
        dataset = versioning.create_version(session=session, settings=settings, parent=parent,
                                            path=str(work / "source" / "added"))
    return {"dataset_id": dataset.id, "version": dataset.version, "counts": dataset.summary["version"]["counts"],
            "stored": stored_bytes(service.storage_dir(settings, dataset))}


PHASE_WORK = {"baseline": do_baseline, "import": do_import, "export": do_export, "version": do_version}


def stored_bytes(folder: Path) -> dict:
    """Files under ``folder`` and the new inodes among them (not a symlink, no other hard link); the files every
    version writes whole (stats, manifest) also on their own."""
    files = new_files = blocks = sizes = 0
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            info = os.lstat(os.path.join(dirpath, name))
            files += 1
            if not stat.S_ISLNK(info.st_mode) and info.st_nlink == 1:
                new_files += 1
                blocks += info.st_blocks * 512
                sizes += info.st_size
    whole = {name: (folder / name).stat().st_size for name in WRITTEN_WHOLE if (folder / name).is_file()}
    return {"files": files, "new_files": new_files, "new_blocks_mib": round(blocks / 2**20, 3),
            "new_size_mib": round(sizes / 2**20, 3), "written_whole_kib": {
                name: round(size / 1024, 1) for name, size in whole.items()},
            "new_size_without_whole_mib": round((sizes - sum(whole.values())) / 2**20, 4)}


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def wchar() -> int:
    with open("/proc/self/io") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("wchar:"))


def read_state(work: Path) -> dict:
    return json.loads((work / "state.json").read_text())


# --- the parent ----------------------------------------------------------------------------------------------


def child(phase: str, work: Path) -> dict:
    result_path = work / f"{phase}.json"
    subprocess.run([sys.executable, __file__, "--phase", phase, "--work", str(work)], check=True, cwd=REPO_ROOT)
    return json.loads(result_path.read_text())


def generate(work: Path, args: argparse.Namespace) -> dict:
    started = time.monotonic()
    write_coco_folder(work / "source" / "v1", first=0, count=args.images, per_image=args.per_image, size=args.size,
                      seed=args.seed, splits=("train", "val"))
    added = max(1, round(args.images * args.added))
    write_coco_folder(work / "source" / "added", first=args.images, count=added, per_image=args.per_image,
                      size=args.size, seed=args.seed + 1, splits=("train",))
    json_bytes = sum(path.stat().st_size for path in (work / "source" / "v1" / "annotations").glob("*.json"))
    return {"images": args.images, "instances": args.images * args.per_image, "added_images": added,
            "json_mib": round(json_bytes / 2**20, 1), "seconds": round(time.monotonic() - started, 1)}


def run_all(work: Path, args: argparse.Namespace) -> dict:
    print(f"generating {args.images} images × {args.per_image} boxes in {work} …", flush=True)
    source = generate(work, args)
    print(f"  {source}", flush=True)
    results: dict[str, dict] = {}
    for phase in PHASES:
        results[phase] = child(phase, work)
        if phase == "import":
            (work / "state.json").write_text(json.dumps({"v1": results[phase]["dataset_id"]}))
        print(f"{phase}: {json.dumps(results[phase])}", flush=True)
    return {"source": source, "phases": results}


def summarize(run: dict) -> dict:
    phases, source = run["phases"], run["source"]
    baseline = phases["baseline"]["peak_rss_mib"]
    v1, v2 = phases["import"]["stored"], phases["version"]["stored"]
    return {
        "import_images_per_s": round(source["images"] / phases["import"]["seconds"], 1),
        "export_images_per_s": round(source["images"] / phases["export"]["seconds"], 1),
        "rss_above_baseline_mib": {phase: round(phases[phase]["peak_rss_mib"] - baseline, 1)
                                   for phase in ("import", "export", "version")},
        "version_seconds_vs_import": round(phases["version"]["seconds"] / phases["import"]["seconds"], 3),
        "version_new_blocks_ratio": round(v2["new_blocks_mib"] / v1["new_blocks_mib"], 4),
        "version_new_size_ratio": round(v2["new_size_mib"] / v1["new_size_mib"], 4),
        "version_label_size_ratio": round(v2["new_size_without_whole_mib"] / v1["new_size_without_whole_mib"], 4),
        "version_written_ratio": round(phases["version"]["written_mib"] / phases["import"]["written_mib"], 4),
        "goal_ratio": round(source["added_images"] / source["images"], 4),
    }


def print_table(run: dict, summary: dict) -> None:
    phases = run["phases"]
    print("\n| phase | seconds | images/s | peak RSS | above baseline | written (wchar) | steps |")
    print("|---|---|---|---|---|---|---|")
    for phase in PHASES:
        result = phases[phase]
        rate = {"import": summary["import_images_per_s"], "export": summary["export_images_per_s"]}.get(phase, "")
        above = summary["rss_above_baseline_mib"].get(phase, "")
        steps = ", ".join(f"{name} {value:.1f}" for name, value in result["steps_s"].items())
        print(f"| {phase} | {result['seconds']:.1f} | {rate} | {result['peak_rss_mib']:.0f} MiB | {above} | "
              f"{result['written_mib']:.1f} MiB | {steps} |")
    print(f"\nstored: v1 {phases['import']['stored']}  v2 {phases['version']['stored']}")
    print(f"summary: {json.dumps(summary)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--per-image", type=int, default=10, help="boxes per image")
    parser.add_argument("--added", type=float, default=0.01, help="the new version's images, as a share of --images")
    parser.add_argument("--size", type=int, default=48, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="keep the generated data and data dir here (default: a temp dir)")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)  # a child's single phase
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "dataset_formats.json")
    args = parser.parse_args()
    if args.phase:
        result = run_phase(args.phase, args.work)
        (args.work / f"{args.phase}.json").write_text(json.dumps(result))
        return 0
    with tempfile.TemporaryDirectory(prefix="imagerec-formats-") as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        run = run_all(work, args)
    summary = summarize(run)
    print_table(run, summary)
    result = {**run, "summary": summary, "python": platform.python_version(), "cpus": os.cpu_count(),
              "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
