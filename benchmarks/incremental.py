"""Adding classes without forgetting: naive fine-tune vs imagerec incremental vs joint training, same epochs.

    .venv/bin/python benchmarks/incremental.py [--base-epochs 30] [--epochs 15] [--seeds 1] [--first-seed 0]
        [--train 128] [--distill-weight W]
        [--ways naive imagerec joint imagerec-no-replay imagerec-no-pseudo imagerec-no-distill]

1. Base: yolov8n (random init) trained on synthetic detection data with the old classes square / circle /
   triangle (``--train`` images, 64 px).
2. New data: other images holding all five shapes; the team labelled only the new classes cross and diamond, so
   old-class objects in them are unlabelled (as in real new data). The complete labels exist too, for "joint".
3. Three ways from the base weights, each ``--epochs`` epochs with the same training arguments and seed:
   - naive: Ultralytics fine-tune on the new data (merged class list, so the old classes keep their head rows;
     Ultralytics 8.4 even remaps them by name) — the usual recipe that forgets;
   - imagerec: the incremental strategy's own plan (the code the training child runs): widened head, class-balanced
     replay of base images (ratio 1), the base model's pseudo-labels on the new images, old-class distillation;
   - joint: all data with all labels (base images + the new images fully labelled), the upper bound.
4. Evaluation, the same for each: old classes on the base data's val images, new classes on the new val images
   (per-class mAP50-95, as the service's report). Retention = old-class mAP / base old-class mAP; new-class
   figures relative to joint.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from imagerec.config import Settings  # noqa: E402
from imagerec.datasets.synthetic import write_dataset  # noqa: E402
from imagerec.training import ultralytics_env  # noqa: E402
from imagerec.training.context import DatasetInfo, ModelInfo, RunContext  # noqa: E402
from imagerec.training.incremental.evaluation import per_class_ap  # noqa: E402
from imagerec.training.schemas import IncrementalRequest  # noqa: E402
from imagerec.training.strategies.incremental import IncrementalStrategy  # noqa: E402

OLD = ["square", "circle", "triangle"]
NEW = ["cross", "diamond"]
MERGED = OLD + NEW
WAYS = ("naive", "imagerec", "joint")
ABLATIONS = {  # imagerec with one part switched off
    "imagerec-no-replay": {"replay": {"enabled": False}},
    "imagerec-no-pseudo": {"pseudo_labels": {"enabled": False}},
    "imagerec-no-distill": {"distill_old": {"enabled": False}},
}
# mosaic off: at 64 px it shrinks the shapes to a few pixels; nbs = batch: one optimizer step per batch
COMMON = dict(imgsz=64, batch=16, nbs=16, workers=0, device="cpu", mosaic=0.0, plots=False, verbose=False,
              exist_ok=True, warmup_epochs=0)


def yaml_for(folder: Path, *, train: list[str] | str, val: list[str] | str, names: list[str], name: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"path": str(folder), "train": train, "val": val,
                                    "names": dict(enumerate(names))}))
    return path


def link_images(source: Path, target_root: Path) -> None:
    for image in source.glob("images/*/*"):
        target = target_root / image.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.hardlink_to(image)


def new_data_labelled_by_the_team(full: Path, partial: Path) -> None:
    """Same images; only the new classes' labels (ids 0, 1 in the new dataset's own class list)."""
    link_images(full, partial)
    for label in full.glob("labels/*/*.txt"):
        rows = [line.split() for line in label.read_text().splitlines() if line.strip()]
        kept = [" ".join([str(int(r[0]) - len(OLD)), *r[1:]]) for r in rows if int(r[0]) >= len(OLD)]
        if kept:
            target = partial / label.relative_to(full)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("\n".join(kept) + "\n")


def remap_partial_to_merged(partial: Path, merged: Path) -> None:
    """What a user does for the naive fine-tune: the same labels in the merged class list."""
    link_images(partial, merged)
    for label in partial.glob("labels/*/*.txt"):
        rows = [line.split() for line in label.read_text().splitlines() if line.strip()]
        target = merged / label.relative_to(partial)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(" ".join([str(int(r[0]) + len(OLD)), *r[1:]]) + "\n" for r in rows))


def make_data(root: Path, *, train: int, val: int, seed: int) -> dict[str, Path]:
    base = write_dataset("detect", root / "base", train=train, val=val, seed=seed, classes=OLD)
    full = write_dataset("detect", root / "new-full", train=train, val=val, seed=seed + 100, classes=MERGED)
    new_data_labelled_by_the_team(full, root / "new-partial")
    remap_partial_to_merged(root / "new-partial", root / "new-merged")
    joint = root / "joint"
    for source in (base, full):
        for path in source.glob("*/*/*"):
            if path.is_file():
                target = joint / path.relative_to(source).parent / f"{source.name}-{path.name}"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.hardlink_to(path)
    return {
        "base": base, "new_partial": root / "new-partial",
        "base_train": yaml_for(base, train="images/train", val="images/val", names=OLD, name="train"),
        "naive_train": yaml_for(root / "new-merged", train="images/train", val="images/val", names=MERGED,
                                name="train"),
        "joint_train": yaml_for(joint, train="images/train", val="images/val", names=MERGED, name="train"),
        "eval_old": yaml_for(base, train="images/train", val="images/val", names=MERGED, name="eval-old"),
        "eval_new": yaml_for(full, train="images/train", val="images/val", names=MERGED, name="eval-new"),
    }


def train_base(data: dict[str, Path], root: Path, *, epochs: int, seed: int) -> Path:
    from ultralytics import YOLO

    yolo = YOLO("yolov8n.yaml")
    yolo.train(data=str(data["base_train"]), epochs=epochs, project=str(root), name="base", seed=seed,
               optimizer="AdamW", lr0=0.003, cls=2.0, **COMMON)
    return Path(yolo.trainer.best)


def incremental_context(data: dict[str, Path], base: Path, run_dir: Path, settings: Settings,
                        args: argparse.Namespace, seed: int, way: str) -> RunContext:
    fields = {"distill_old": {"weight": args.distill_weight}} if args.distill_weight is not None else {}
    request = IncrementalRequest(base_model_id=1, dataset_id=2, epochs=args.epochs, imgsz=64, batch=16,
                                 device="cpu", workers=0, seed=seed, **(fields | ABLATIONS.get(way, {})))
    request.replay.source_dataset_ids = [1]
    base_info = DatasetInfo(id=1, name="base", task="detect", class_names=OLD, kpt_shape=None, flip_idx=None,
                            files_dir=data["base"])
    return RunContext(
        task_id=0, mode="incremental", name=None, settings=settings, params=request.model_dump(mode="json"),
        run_dir=run_dir, resume_from=None, datasets_by_role={"replay_source": [base_info]},
        dataset=DatasetInfo(id=2, name="new", task="detect", class_names=NEW, kpt_shape=None, flip_idx=None,
                            files_dir=data["new_partial"]),
        base_model=ModelInfo(id=1, task="detect", architecture="yolov8n", class_names=OLD, weights_path=base),
    )


def run_way(way: str, data: dict[str, Path], base: Path, root: Path, settings: Settings,
            args: argparse.Namespace, seed: int) -> tuple[Path, float]:
    from ultralytics import YOLO

    train_args = dict(epochs=args.epochs, seed=seed, optimizer="AdamW", lr0=0.002, project=str(root / way),
                      name="train", **COMMON)
    started = time.monotonic()
    if way.startswith("imagerec"):
        ctx = incremental_context(data, base, root / way, settings, args, seed, way)
        plan = IncrementalStrategy().plan(ctx)
        plan.model.train(trainer=plan.trainer_class, data=plan.data, **train_args, **plan.train_args)
        trainer = plan.model.trainer
    else:
        yolo = YOLO(str(base))
        yolo.train(data=str(data[f"{way}_train"]), **train_args)
        trainer = yolo.trainer
    elapsed = time.monotonic() - started
    return Path(trainer.best), elapsed


def evaluate(weights: Path, data: dict[str, Path], root: Path) -> dict[str, float]:
    def mean(values: list[float]) -> float:
        return statistics.mean(values) if values else 0.0

    kwargs = dict(task="detect", imgsz=64, batch=16, device="cpu", project=root / "eval")
    old = per_class_ap(weights, data["eval_old"], **kwargs)
    new = per_class_ap(weights, data["eval_new"], **kwargs)
    return {"old": mean([old[c][0] for c in range(len(OLD)) if c in old]),
            "new": mean([new[c][0] for c in range(len(OLD), len(MERGED)) if c in new])}


def one_seed(seed: int, args: argparse.Namespace, scratch: Path) -> dict:
    root = scratch / f"seed{seed}"
    settings = Settings(data_dir=root / "service")
    ultralytics_env.configure(settings)
    data = make_data(root / "data", train=args.train, val=args.val, seed=seed)
    base = train_base(data, root, epochs=args.base_epochs, seed=seed)
    results = {"base": evaluate(base, data, root)}
    for way in args.ways:
        weights, elapsed = run_way(way, data, base, root, settings, args, seed)
        results[way] = evaluate(weights, data, root) | {"seconds": elapsed}
        print(json.dumps({"seed": seed, way: results[way]}), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-epochs", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=128)
    parser.add_argument("--val", type=int, default=32)
    parser.add_argument("--distill-weight", type=float, default=None, help="distill_old.weight (default: the API's)")
    parser.add_argument("--ways", nargs="+", default=list(WAYS), choices=[*WAYS, *ABLATIONS],
                        help="ways to run (the table needs joint); ablations switch one imagerec part off")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagerec-incremental-") as scratch:
        runs = [one_seed(seed, args, Path(scratch)) for seed in range(args.first_seed, args.first_seed + args.seeds)]
    print_table(runs, args.ways)


def print_table(runs: list[dict], ways: list[str]) -> None:
    def avg(way: str, key: str) -> float:
        return statistics.mean(run[way][key] for run in runs)

    base_old = avg("base", "old")
    joint_new = avg("joint", "new") if "joint" in ways else float("nan")
    print(f"\nbase model: old-class mAP50-95 {base_old:.3f}  ({len(runs)} seed(s))")
    print("| way | old-class mAP50-95 | retention | new-class mAP50-95 | new vs joint | train s |")
    print("|---|---|---|---|---|---|")
    for way in ways:
        old, new = avg(way, "old"), avg(way, "new")
        print(f"| {way} | {old:.3f} | {old / base_old:.2f} | {new:.3f} | {new / joint_new:.2f} | "
              f"{avg(way, 'seconds'):.0f} |")


if __name__ == "__main__":
    main()
