"""Fine-tuning three ways at the same total epochs: full, static frozen backbone, and the "gradual" preset.

    .venv/bin/python benchmarks/freeze_strategy.py [--pretrain-epochs 40] [--epochs 15] [--seeds 3]

1. Pretrain yolov8n (random init) on a synthetic detection set: 128 images, classes square / circle / triangle.
2. Fine-tune that model on a *different* small set: other images (another generator seed), 32 for training and
   32 for validation, and another label set, "round" (circles) vs "angular" (squares, triangles), so the class
   head starts new (Ultralytics drops the mismatched class convs when loading) while the features carry over.
   Three ways, each for ``--epochs`` epochs with the same arguments and training seed:
   - full: plain ``train()``, everything trainable;
   - frozen-backbone: Ultralytics' own static ``freeze=<backbone length from the model's YAML>``;
   - gradual: the service's "gradual" preset (``schedule.build_schedule`` + ``staging.StageController``, the
     code the training child runs): backbone frozen, then its later half released, then all at 0.1 × lr.
   The three alternate within each seed, so machine load falls on all of them alike.

Reported per way: mAP50-95 on the fine-tune validation set after the last epoch ("final") and of the best
checkpoint ("best", what the service registers), and wall time of ``train()``. Mean ± sd over seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from imagerec.datasets.synthetic import write_dataset  # noqa: E402
from imagerec.training.layers import LayerGroups  # noqa: E402
from imagerec.training.schedule import build_schedule  # noqa: E402
from imagerec.training.staging import StageController  # noqa: E402

WAYS = ("full", "frozen-backbone", "gradual")
NEW_NAMES = {0: "round", 1: "angular"}
NEW_CLASS = {0: 1, 1: 0, 2: 1}  # square → angular, circle → round, triangle → angular
# mosaic off: at 64 px it shrinks the shapes to a few pixels; nbs = batch: one optimizer step per batch
COMMON = dict(imgsz=64, batch=16, nbs=16, workers=0, device="cpu", mosaic=0.0, plots=False, verbose=False,
              optimizer="AdamW", exist_ok=True)


def data_yaml(folder: Path, names: dict[int, str]) -> Path:
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump({"path": str(folder), "train": "images/train", "val": "images/val",
                                    "names": names}))
    return path


def relabel(folder: Path) -> None:
    """The fine-tune set's new label set: round vs angular."""
    for label in folder.glob("labels/*/*.txt"):
        rows = [line.split() for line in label.read_text().splitlines() if line.strip()]
        label.write_text("".join(" ".join([str(NEW_CLASS[int(row[0])]), *row[1:]]) + "\n" for row in rows))


def pretrain(work: Path, epochs: int) -> Path:
    from ultralytics import YOLO

    folder = write_dataset("detect", work / "pretrain-data", train=128, val=16, imgsz=64, seed=1)
    yolo = YOLO("yolov8n.yaml")
    yolo.train(data=str(data_yaml(folder, {0: "square", 1: "circle", 2: "triangle"})), epochs=epochs, lr0=0.01,
               warmup_epochs=0, val=False, seed=0, project=str(work / "runs"), name="pretrain", **COMMON)
    return Path(yolo.trainer.best)


def fine_tune(way: str, weights: Path, data: Path, work: Path, *, epochs: int, seed: int) -> dict:
    from ultralytics import YOLO

    yolo = YOLO(str(weights))
    groups = LayerGroups.from_model_yaml(yolo.model.yaml)
    extra = {"freeze": groups.backbone} if way == "frozen-backbone" else {}
    if way == "gradual":
        schedule = build_schedule({"preset": "gradual", "epochs": epochs}, groups)
        for event, callback in StageController(schedule).callbacks():
            yolo.add_callback(event, callback)
    per_epoch: list[float] = []
    yolo.add_callback("on_fit_epoch_end", lambda t: per_epoch.append(float(t.metrics["metrics/mAP50-95(B)"])))
    started = time.perf_counter()
    yolo.train(data=str(data), epochs=epochs, lr0=0.002, warmup_epochs=1, seed=seed, project=str(work / "runs"),
               name=f"{way}-{seed}", **COMMON, **extra)
    seconds = time.perf_counter() - started
    # on_fit_epoch_end runs once per epoch, then once more for the final validation of best.pt
    return {"way": way, "seed": seed, "final": per_epoch[epochs - 1], "best": per_epoch[-1], "seconds": seconds,
            "curve": per_epoch[:epochs]}


def summarise(runs: list[dict]) -> dict[str, dict]:
    def stats(values: list[float]) -> dict:
        return {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}

    table = {}
    for way in WAYS:
        mine = [run for run in runs if run["way"] == way]
        table[way] = {key: stats([run[key] for run in mine]) for key in ("final", "best")}
        table[way]["seconds"] = {"median": statistics.median(run["seconds"] for run in mine)}
    return table


def markdown(table: dict[str, dict], seeds: int) -> str:
    lines = [f"| way | mAP50-95 final (mean ± sd, {seeds} seeds) | mAP50-95 best | wall time (median) |",
             "|---|---|---|---|"]
    for way, row in table.items():
        lines.append(f"| {way} | {row['final']['mean']:.3f} ± {row['final']['sd']:.3f} | "
                     f"{row['best']['mean']:.3f} ± {row['best']['sd']:.3f} | {row['seconds']['median']:.1f} s |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-epochs", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "freeze_strategy.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagerec-freeze-") as tmp:
        work = Path(tmp)
        os.environ |= {"YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(work / "cfg")}
        weights = pretrain(work, args.pretrain_epochs)
        folder = write_dataset("detect", work / "finetune-data", train=32, val=32, imgsz=64, seed=7)
        relabel(folder)
        data = data_yaml(folder, NEW_NAMES)
        runs = []
        for seed in range(args.seeds):
            order = WAYS[seed % 3:] + WAYS[: seed % 3]  # rotate who goes first
            for way in order:
                runs.append(fine_tune(way, weights, data, work, epochs=args.epochs, seed=seed))
                print(f"seed {seed} {way}: final {runs[-1]['final']:.3f} best {runs[-1]['best']:.3f} "
                      f"{runs[-1]['seconds']:.1f} s", flush=True)
    table = summarise(runs)
    print(markdown(table, args.seeds))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"table": table, "runs": runs, "args": vars(args) | {"out": None}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
