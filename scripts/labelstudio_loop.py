"""The whole Label Studio loop against a real Label Studio: predictions, labelling, "Start training", a new model.

    .venv/bin/python scripts/labelstudio_loop.py [--ls-venv /tmp/labelstudio-venv] [--work DIR] [--images 24]

Not part of the test suite (it installs Label Studio, about 2 minutes the first time, and runs real trainings).
What it does, timing each step:

1. installs Label Studio 1.23 into its own venv (``--ls-venv``) when it is not there, and starts it on loopback
   with the settings a local ML backend needs (``ML_BLOCK_LOCAL_IP=false``, ``SSRF_PROTECTION_ENABLED=false``)
   and none that reach the internet; creates a personal access token through its API;
2. starts imagerec (``uvicorn main:app``, its own data dir), registers that Label Studio with the token
   (``POST /api/labelstudio/connections``), trains a first tiny detect model (3 epochs of synthetic shapes) and
   marks it default;
3. creates a Label Studio project (RectangleLabels square/circle/triangle), uploads ``--images`` synthetic images,
   connects imagerec as its ML backend (the key as basic-auth password; extra params: a short training), and
   retrieves predictions for every task;
4. labels the tasks through Label Studio's API (the shapes drawn in the images), presses "Start training"
   (``POST /api/ml/{id}/train``), and waits for imagerec's loop task to end and for Label Studio to show the
   model version the decision left.

Prints a JSON summary (also written to ``--work``/summary.json) and exits 0 when every step worked.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

LABEL_STUDIO = "label-studio==1.23.*"
ADMIN_KEY = "irk-labelstudio-loop-admin-key"
CLASSES = ["square", "circle", "triangle"]
CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="label" toName="image">
    <Label value="square"/><Label value="circle"/><Label value="triangle"/>
  </RectangleLabels>
</View>"""
TRAINING = {"epochs": 3, "imgsz": 64, "batch": 8, "workers": 0, "device": "cpu"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Http:
    def __init__(self, base: str, headers: dict[str, str]):
        self.base, self.headers = base.rstrip("/"), headers

    def call(self, method: str, path: str, body: object = None, *, raw: bytes | None = None,
             content_type: str = "application/json", timeout: float = 120) -> object:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method,
                                         headers={**self.headers, "Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 (loopback)
                text = answer.read()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: {error.code} {error.read()[:500]!r}") from None
        return json.loads(text) if text else None


def wait_until(check, *, timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (OSError, RuntimeError):
            value = None
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def install_label_studio(venv: Path) -> float:
    started = time.monotonic()
    if not (venv / "bin" / "label-studio").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", LABEL_STUDIO], check=True)
    return time.monotonic() - started


def start_label_studio(venv: Path, work: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(work / "label-studio"), "ML_BLOCK_LOCAL_IP": "false",
           "SSRF_PROTECTION_ENABLED": "false", "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "",
           "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false",
           "LABEL_STUDIO_HOST": f"http://127.0.0.1:{port}"}
    log = open(work / "label-studio.log", "w")  # noqa: SIM115 (open for the process's lifetime)
    return subprocess.Popen([str(venv / "bin" / "label-studio"), "start", "--no-browser", "--host", "127.0.0.1",
                             "--port", str(port), "--username", "loop@example.com", "--password", "loop-password-1",
                             "--user-token", "loop-legacy-token-0123", "--enable-legacy-api-token"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)


def start_imagerec(work: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "IMAGEREC_DATA_DIR": str(work / "imagerec"), "IMAGEREC_ADMIN_KEY": ADMIN_KEY,
           "YOLO_OFFLINE": "1", "IMAGEREC_DEFAULT_WORKERS": "0"}
    log = open(work / "imagerec.log", "w")  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)


def first_model(imagerec: Http, work: Path) -> int:
    from imagerec.datasets.synthetic import write_dataset, zip_folder

    source = write_dataset("detect", work / "first-data", train=32, val=8, imgsz=64, seed=1)
    boundary = "imagerecloop"
    archive = zip_folder(source, work / "first.zip").read_bytes()
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nfirst\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"task\"\r\n\r\ndetect\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.zip\"\r\n"
            "Content-Type: application/zip\r\n\r\n").encode() + archive + f"\r\n--{boundary}--\r\n".encode()
    dataset = imagerec.call("POST", "/api/datasets", raw=body, content_type=f"multipart/form-data; boundary={boundary}")
    task = imagerec.call("POST", "/api/training/regular", {"dataset_id": dataset["id"], "architecture": "yolov8n",
                                                            **TRAINING})
    done = wait_until(lambda: (t := imagerec.call("GET", f"/api/tasks/{task['id']}"))["status"] in (
        "succeeded", "failed") and t, timeout=600, what="the first model's training")
    if done["status"] != "succeeded":
        raise RuntimeError(f"the first training failed: {done.get('error')}")
    imagerec.call("POST", f"/api/models/{done['model_id']}/default")
    return done["model_id"]


def upload_images(label_studio: Http, project: int, work: Path, count: int) -> dict[str, list]:
    """Synthetic images uploaded to the project; their drawn shapes by file name."""
    from imagerec.datasets.synthetic import write_dataset

    source = write_dataset("detect", work / "project-data", train=count, val=0, imgsz=64, seed=2)
    shapes = {}
    for image in sorted((source / "images" / "train").iterdir()):
        boundary = "lsupload"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{image.name}\"\r\n"
                "Content-Type: image/png\r\n\r\n").encode() + image.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        label_studio.call("POST", f"/api/projects/{project}/import", raw=body,
                          content_type=f"multipart/form-data; boundary={boundary}")
        label = source / "labels" / "train" / f"{image.stem}.txt"
        shapes[image.name] = [line.split() for line in label.read_text().splitlines() if line.strip()]
    return shapes


def regions(lines: list[list[str]]) -> list[dict]:
    result = []
    for class_id, cx, cy, w, h in lines:
        cx, cy, w, h = (float(value) * 100 for value in (cx, cy, w, h))
        result.append({"from_name": "label", "to_name": "image", "type": "rectanglelabels",
                       "original_width": 64, "original_height": 64, "image_rotation": 0,
                       "value": {"x": cx - w / 2, "y": cy - h / 2, "width": w, "height": h, "rotation": 0,
                                 "rectanglelabels": [CLASSES[int(class_id)]]}})
    return result


def run(args: argparse.Namespace, work: Path) -> dict:
    timings, summary = {}, {"label_studio": LABEL_STUDIO}
    timings["install_label_studio_s"] = round(install_label_studio(args.ls_venv), 1)
    ls_port, ir_port = free_port(), free_port()
    processes = [start_label_studio(args.ls_venv, work, ls_port), start_imagerec(work, ir_port)]
    try:
        started = time.monotonic()
        legacy = Http(f"http://127.0.0.1:{ls_port}", {"Authorization": "Token loop-legacy-token-0123"})
        wait_until(lambda: legacy.call("GET", "/api/projects"), timeout=300, what="Label Studio to start")
        timings["label_studio_start_s"] = round(time.monotonic() - started, 1)
        pat = legacy.call("POST", "/api/token/")["token"]
        imagerec = Http(f"http://127.0.0.1:{ir_port}", {"Authorization": f"Bearer {ADMIN_KEY}"})
        wait_until(lambda: imagerec.call("GET", "/health"), timeout=60, what="imagerec to start")
        imagerec.call("POST", "/api/labelstudio/connections", {"url": f"http://127.0.0.1:{ls_port}", "token": pat})
        step = time.monotonic()
        summary["first_model_id"] = first_model(imagerec, work)
        timings["first_model_s"] = round(time.monotonic() - step, 1)

        step = time.monotonic()
        project = legacy.call("POST", "/api/projects", {"title": "imagerec loop", "label_config": CONFIG})["id"]
        shapes = upload_images(legacy, project, work, args.images)
        backend = legacy.call("POST", "/api/ml", {
            "url": f"http://127.0.0.1:{ir_port}/labelstudio", "project": project, "title": "imagerec",
            "auth_method": "BASIC_AUTH", "basic_auth_user": "labelstudio", "basic_auth_pass": ADMIN_KEY,
            "extra_params": {"mode": "incremental", **TRAINING}, "is_interactive": False})
        summary["backend_state"] = backend.get("state")
        timings["project_and_connect_s"] = round(time.monotonic() - step, 1)

        step = time.monotonic()
        tasks = legacy.call("GET", f"/api/tasks?project={project}&page_size=1000")["tasks"]
        legacy.call("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}",
                    {"selectedItems": {"all": True, "excluded": []}})
        predicted = wait_until(lambda: (n := sum(1 for t in legacy.call(
            "GET", f"/api/tasks?project={project}&page_size=1000&fields=all")["tasks"] if t.get("predictions"))) == len(
            tasks) and n, timeout=300, what="predictions for every task")
        summary["predicted_tasks"] = predicted
        timings["predictions_s"] = round(time.monotonic() - step, 1)

        step = time.monotonic()
        for task in tasks:
            name = task["data"]["image"].rpartition("/")[2].partition("-")[2]
            legacy.call("POST", f"/api/tasks/{task['id']}/annotations",
                        {"result": regions(shapes[name]), "was_cancelled": False})
        summary["annotated_tasks"] = len(tasks)
        timings["labelling_s"] = round(time.monotonic() - step, 1)

        step = time.monotonic()
        answer = legacy.call("POST", f"/api/ml/{backend['id']}/train", {"use_ground_truth": True})
        summary["train_answer"] = answer
        task_id = wait_until(lambda: imagerec.call("GET", f"/api/labelstudio/projects/{project}")["last_task_id"],
                             timeout=60, what="imagerec's loop task")
        ended = wait_until(lambda: (t := imagerec.call("GET", f"/api/tasks/{task_id}"))["status"] in (
            "succeeded", "failed", "cancelled") and t, timeout=1200, what="the loop task", every=3)
        summary["loop_task"] = {"id": task_id, "status": ended["status"], "error": ended.get("error"),
                                "loop": (ended.get("report") or {}).get("loop")}
        timings["start_training_to_decision_s"] = round(time.monotonic() - step, 1)
        project_row = imagerec.call("GET", f"/api/labelstudio/projects/{project}")
        expected = project_row["model_version"]
        # Label Studio asks /setup again whenever the backend is read (ml/api.py: get_object → update_state)
        shown = wait_until(lambda: (v := legacy.call("GET", f"/api/ml/{backend['id']}").get("model_version"))
                           == expected and v, timeout=60, what="Label Studio to show the project's model")
        summary["label_studio_model_version"] = shown
        summary["project"] = {key: project_row[key] for key in ("model_id", "model_version", "decision", "problem")}
        summary["ok"] = ended["status"] == "succeeded" and predicted == len(tasks)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
    summary["timings"] = timings
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ls-venv", type=Path, default=Path(tempfile.gettempdir()) / "labelstudio-venv")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--images", type=int, default=24)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="labelstudio-loop-"))
    work.mkdir(parents=True, exist_ok=True)
    summary = run(args, work)
    (work / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return 0 if summary.get("ok") else 1


if __name__ == "__main__":
    raise SystemExit(main())
