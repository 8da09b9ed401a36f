"""Wall-time overhead of training through the service versus plain ``YOLO(...).train(...)``.

    python benchmarks/training_overhead.py [--rounds 3] [--epochs 5] [--train 64] [--imgsz 128]

Both sides train the same synthetic detection data, model (yolov8n.yaml), epochs, imgsz, batch, seed, on the
CPU, alternated round by round in one run. The plain side is a fresh Python process (import, build, train),
timed from launch to exit; the service side is timed from the POST to the task reading ``succeeded`` (the
executor spawns a fresh process that does the same import, build and train, plus the service's callbacks,
database writes and model registration). Ratio = median service / median plain.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from server import REPO_ROOT, register_zip, running_server, wait_finished

sys.path.insert(0, str(REPO_ROOT))
from imagerec.datasets.synthetic import write_dataset_zip  # noqa: E402

PLAIN = """
import os, sys
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_CONFIG_DIR"] = sys.argv[2]
from ultralytics import YOLO
YOLO("yolov8n.yaml").train(data=sys.argv[1], epochs={epochs}, imgsz={imgsz}, batch=16, device="cpu", workers=0,
    seed=0, project=sys.argv[3], name="train", exist_ok=True, plots=False, verbose=True)
"""


def plain_run(data_yaml: Path, work: Path, *, epochs: int, imgsz: int) -> float:
    code = PLAIN.format(epochs=epochs, imgsz=imgsz)
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code, str(data_yaml), str(work / "cfg"), str(work / "plain")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def service_run(client, dataset_id: int, *, epochs: int, imgsz: int) -> float:
    body = {"dataset_id": dataset_id, "architecture": "yolov8n", "epochs": epochs, "imgsz": imgsz, "batch": 16,
            "device": "cpu", "workers": 0, "seed": 0}
    started = time.monotonic()
    task = client.post("/api/training/regular", json=body).json()
    done = wait_finished(client, task["id"])
    elapsed = time.monotonic() - started
    if done["status"] != "succeeded":
        raise RuntimeError(done["error"])
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train", type=int, default=64)
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "training_overhead.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagerec-overhead-") as tmp:
        work = Path(tmp)
        archive = write_dataset_zip("detect", work / "detect.zip", train=args.train, val=16, imgsz=args.imgsz)
        with running_server(work / "data", work / "server.log") as client:
            dataset = register_zip(client, archive, name="overhead", task="detect")
            data_yaml = work / "plain-data.yaml"
            data_yaml.write_text(json.dumps({"path": str(_files_dir(work / "data")), "train": "images/train",
                                             "val": "images/val", "names": dict(enumerate(dataset["class_names"]))}))
            plain, service = [], []
            for round_ in range(args.rounds):
                plain.append(plain_run(data_yaml, work, epochs=args.epochs, imgsz=args.imgsz))
                service.append(service_run(client, dataset["id"], epochs=args.epochs, imgsz=args.imgsz))
                print(f"round {round_ + 1}: plain {plain[-1]:.2f} s  service {service[-1]:.2f} s", flush=True)
    ratio = statistics.median(service) / statistics.median(plain)
    result = {"plain_s": plain, "service_s": service, "median_plain_s": statistics.median(plain),
              "median_service_s": statistics.median(service), "ratio": ratio, "args": vars(args) | {"out": None}}
    print(f"median plain {result['median_plain_s']:.2f} s, service {result['median_service_s']:.2f} s, "
          f"ratio {ratio:.3f} (goal <= 1.02)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _files_dir(data_dir: Path) -> Path:
    """The one registered dataset's files (its folder name is a uuid)."""
    (folder,) = [p for p in (data_dir / "datasets").iterdir() if (p / "files").is_dir()]
    return folder / "files"


if __name__ == "__main__":
    sys.exit(main())
