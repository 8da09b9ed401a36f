"""A yolov8n student three ways at the same epochs: plain, Ultralytics' built-in ``distill_model``, imagerec.

    .venv/bin/python benchmarks/distillation.py [--seed 0] [--seeds 2] [--train 128] [--val 64] [--imgsz 96]
        [--teacher-epochs 30] [--epochs 15] [--pretrain-epochs 0] [--ablation] [--work DIR] [--losses JSON]

1. A synthetic detection set (``imagerec.datasets.synthetic.write_dataset``: squares, circles, triangles on noise)
   from ``--seed``: ``--train`` training and ``--val`` validation images at ``--imgsz`` px.
2. A yolov8s teacher, random init, trained ``--teacher-epochs`` epochs (kept in ``--work`` for reruns).
3. A yolov8n student, random init (or, with ``--pretrain-epochs N``, a yolov8n trained N epochs on other images
   of the same generator), ``--epochs`` epochs, the same arguments each way, for ``--seeds`` training
   seeds (short runs from scratch move by several points with the seed alone: the mean is what to compare):
   - plain: ``train()``;
   - built-in: ``train(distill_model=<teacher>)`` (neck features through a projector, score-weighted MSE,
     ``dis`` = 6.0, its default);
   - imagerec: the trainer class the service runs (``trainer_class(..., DistillTrainerMixin)`` with the default
     ``losses`` of ``DistillationRequest``, or ``--losses``);
   - with ``--ablation``: imagerec with each enabled term switched off in turn (first training seed only).

Reported per way: mAP50-95 of the final weights on the validation set (Ultralytics' own final validation), the
wall time of ``train()``, and the median training step time (forward, losses, backward, optimizer step; data
loading excluded, it is the same for every way) with its ratio to plain.
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
from imagerec.training.distill.losses import DEFAULT_LOSSES, term_factory  # noqa: E402
from imagerec.training.distill.trainer import DistillSpec, DistillTrainerMixin, trainer_class  # noqa: E402

# mosaic off: at small sizes it shrinks the shapes to a few pixels; nbs = batch: one optimizer step per batch;
# val off until the end: only the final weights are compared (and validation would blur the step times)
COMMON = dict(batch=16, nbs=16, workers=0, device="cpu", mosaic=0.0, plots=False, verbose=False,
              optimizer="AdamW", lr0=0.002, warmup_epochs=1, val=False, exist_ok=True)


def make_data(work: Path, *, seed: int, train: int, val: int, imgsz: int) -> Path:
    folder = write_dataset("detect", work / f"data-{seed}-{train}-{val}-{imgsz}", train=train, val=val,
                           imgsz=imgsz, seed=seed)
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump({"path": str(folder), "train": "images/train", "val": "images/val",
                                    "names": {0: "square", 1: "circle", 2: "triangle"}}))
    return path


class StepTimer:
    """Median time of a training step (forward, losses, backward, optimizer; not data loading or validation):
    the median, because the 2 cores are shared and a mean would carry other processes' bursts."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._start = 0.0

    def register(self, yolo) -> None:
        yolo.add_callback("on_train_batch_start", self._batch_start)
        yolo.add_callback("on_train_batch_end", self._batch_end)

    def _batch_start(self, trainer) -> None:
        self._start = time.perf_counter()

    def _batch_end(self, trainer) -> None:
        self.durations.append(time.perf_counter() - self._start)

    @property
    def median(self) -> float:
        return statistics.median(self.durations)


def teacher(work: Path, data: Path, *, epochs: int, imgsz: int, seed: int) -> tuple[Path, float]:
    from ultralytics import YOLO

    name = f"teacher-{data.parent.name}-{epochs}"
    weights = work / "runs" / name / "weights" / "last.pt"
    if not weights.is_file():
        yolo = YOLO("yolov8s.yaml")
        yolo.train(data=str(data), epochs=epochs, imgsz=imgsz, seed=seed, project=str(work / "runs"), name=name,
                   **COMMON)
    metrics = YOLO(str(weights)).val(data=str(data), imgsz=imgsz, batch=32, device="cpu", workers=0, plots=False,
                                     verbose=False, project=str(work / "runs"), name=f"{name}-val", exist_ok=True)
    return weights, float(metrics.results_dict["metrics/mAP50-95(B)"])


def pretrained_student(work: Path, *, seed: int, train: int, val: int, imgsz: int, epochs: int) -> Path:
    """yolov8n trained on *other* images of the same kind (another generator seed): a student that starts from
    pretrained weights, as students usually do, so a short run measures the method rather than a random init."""
    from ultralytics import YOLO

    data = make_data(work, seed=seed + 1000, train=train, val=val, imgsz=imgsz)
    name = f"student-start-{data.parent.name}-{epochs}"
    weights = work / "runs" / name / "weights" / "last.pt"
    if not weights.is_file():
        YOLO("yolov8n.yaml").train(data=str(data), epochs=epochs, imgsz=imgsz, seed=seed, project=str(work / "runs"),
                                   name=name, **COMMON)
    return weights


def student(way: str, work: Path, data: Path, teacher_weights: Path, *, epochs: int, imgsz: int, seed: int,
            start: str, losses: dict | None = None) -> dict:
    from ultralytics import YOLO

    yolo = YOLO(start)
    timer = StepTimer()
    timer.register(yolo)
    extra: dict = {}
    if way == "built-in":
        extra = {"distill_model": str(teacher_weights)}
    elif losses is not None:
        spec = DistillSpec(teacher_weights=teacher_weights, make_terms=term_factory("detect", losses))
        extra = {"trainer": trainer_class("detect", (DistillTrainerMixin,), distill=spec)}
    started = time.perf_counter()
    yolo.train(data=str(data), epochs=epochs, imgsz=imgsz, seed=seed, project=str(work / "runs"),
               name=f"{way}-{seed}", **COMMON, **extra)
    return {"way": way, "seed": seed, "mAP50-95": float(yolo.trainer.metrics["metrics/mAP50-95(B)"]),
            "mAP50": float(yolo.trainer.metrics["metrics/mAP50(B)"]), "seconds": time.perf_counter() - started,
            "step_seconds": timer.median}


def ways(args) -> list[tuple[str, dict | None]]:
    chosen = json.loads(args.losses) if args.losses else DEFAULT_LOSSES
    merged = {key: DEFAULT_LOSSES[key] | chosen.get(key, {}) for key in DEFAULT_LOSSES}
    result = [("plain", None), ("built-in", None), ("imagerec", merged)]
    if args.ablation:
        for key in merged:
            if merged[key]["weight"] > 0:
                result.append((f"imagerec without {key}", merged | {key: merged[key] | {"weight": 0.0}}))
    return result


def mean_by_way(runs: list[dict]) -> list[dict]:
    table = []
    for way in dict.fromkeys(run["way"] for run in runs):
        mine = [run for run in runs if run["way"] == way]
        row = {"way": way, "seeds": len(mine), "per_seed": [round(run["mAP50-95"], 3) for run in mine]}
        for key in ("mAP50-95", "mAP50", "seconds", "step_seconds"):
            row[key] = statistics.mean(run[key] for run in mine)
        table.append(row)
    return table


def markdown(table: list[dict], teacher_map: float) -> str:
    plain = next(row for row in table if row["way"] == "plain")
    lines = ["| way | mAP50-95 (mean) | per seed | Δ vs plain | mAP50 | step time (median) | × plain | train() |",
             "|---|---|---|---|---|---|---|---|",
             f"| yolov8s teacher | {teacher_map:.3f} | | | | | | |"]
    for row in table:
        lines.append(f"| {row['way']} | {row['mAP50-95']:.3f} | {', '.join(map(str, row['per_seed']))} | "
                     f"{100 * (row['mAP50-95'] - plain['mAP50-95']):+.1f} | {row['mAP50']:.3f} | "
                     f"{1000 * row['step_seconds']:.0f} ms | {row['step_seconds'] / plain['step_seconds']:.2f} | "
                     f"{row['seconds']:.0f} s |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="data and teacher seed; student seeds start here")
    parser.add_argument("--seeds", type=int, default=2, help="student training seeds per way")
    parser.add_argument("--train", type=int, default=128)
    parser.add_argument("--val", type=int, default=64)
    parser.add_argument("--imgsz", type=int, default=96)
    parser.add_argument("--teacher-epochs", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--pretrain-epochs", type=int, default=0,
                        help="start every student from a yolov8n trained this long on other images (0: random init)")
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--only", default=None, help="comma-separated ways to run (tuning)")
    parser.add_argument("--losses", default=None, help="JSON overriding the default losses (tuning)")
    parser.add_argument("--work", type=Path, default=None, help="keep data and teacher here between runs")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "distillation.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagerec-distill-") as tmp:
        work = args.work or Path(tmp)
        os.environ |= {"YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(work / "cfg")}
        data = make_data(work, seed=args.seed, train=args.train, val=args.val, imgsz=args.imgsz)
        started = time.perf_counter()
        teacher_weights, teacher_map = teacher(work, data, epochs=args.teacher_epochs, imgsz=args.imgsz,
                                               seed=args.seed)
        print(f"teacher: mAP50-95 {teacher_map:.3f} ({time.perf_counter() - started:.0f} s)", flush=True)
        start = "yolov8n.yaml"
        if args.pretrain_epochs:
            start = str(pretrained_student(work, seed=args.seed, train=args.train, val=args.val, imgsz=args.imgsz,
                                           epochs=args.pretrain_epochs))
        runs = []
        for offset in range(args.seeds):
            for way, losses in ways(args):
                if (args.only and way not in args.only.split(",")) or (offset and "without" in way):
                    continue
                runs.append(student(way, work, data, teacher_weights, epochs=args.epochs, imgsz=args.imgsz,
                                    seed=args.seed + offset, start=start, losses=losses))
                print(f"seed {args.seed + offset} {way}: mAP50-95 {runs[-1]['mAP50-95']:.3f}, step "
                      f"{1000 * runs[-1]['step_seconds']:.0f} ms, {runs[-1]['seconds']:.0f} s", flush=True)
    table = mean_by_way(runs)
    if any(row["way"] == "plain" for row in table):
        print(markdown(table, teacher_map))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"teacher_mAP50-95": teacher_map, "table": table, "runs": runs,
                                    "args": vars(args) | {"out": None, "work": None}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
