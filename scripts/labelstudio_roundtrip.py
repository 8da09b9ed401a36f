"""Export datasets from imagerec as Label Studio JSON, import them into a real Label Studio, export them from
Label Studio again and import that back into imagerec: nothing the format holds may be lost on the way.

    .venv/bin/python scripts/labelstudio_roundtrip.py --url http://127.0.0.1:8080 --token <legacy token>

Needs a running Label Studio (1.23; ``pip install label-studio`` into its own venv, started with
``--enable-legacy-api-token --user-token <token>``). Not part of the test suite. For each task kind it:

1. registers a synthetic dataset in a throw-away imagerec (the real HTTP API, in process) and exports it with
   ``GET /api/datasets/{id}/export?format=labelstudio``;
2. creates a Label Studio project with the export's ``label_config.xml`` and imports its ``tasks.json`` (tasks
   with their annotations) through ``POST /api/projects/{id}/import``;
3. exports the project (``GET /api/projects/{id}/export?exportType=JSON``), zips Label Studio's JSON with the
   exported images and the project's label config (Label Studio's export has none; without it the classes come
   back sorted by name) and registers that in imagerec (format detected);
4. compares classes, images per split and instances per class of the first and the last dataset.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

KINDS = ("detect", "segment", "pose", "classify")


class LabelStudio:
    def __init__(self, url: str, token: str):
        self.url, self.token = url.rstrip("/"), token

    def call(self, method: str, path: str, body: object | None = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers={
            "Authorization": f"Token {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 (the operator's own URL)
            return json.loads(answer.read() or b"null")


def round_trip(kind: str, client, label_studio: LabelStudio, work: Path) -> dict:
    from imagerec.datasets.synthetic import write_dataset, zip_folder

    source = write_dataset(kind, work / f"src-{kind}", train=8, val=4, imgsz=64, seed=3)
    first = client.post("/api/datasets", data={"name": f"ls-{kind}", "task": kind},
                        files={"file": ("d.zip", zip_folder(source, work / f"{kind}.zip").read_bytes())})
    first.raise_for_status()
    exported = zipfile.ZipFile(io.BytesIO(client.get(f"/api/datasets/{first.json()['id']}/export",
                                                     params={"format": "labelstudio"}).content))
    project = label_studio.call("POST", "/api/projects", {"title": f"imagerec round trip {kind}",
                                                          "label_config": exported.read("label_config.xml").decode()})
    imported = label_studio.call("POST", f"/api/projects/{project['id']}/import",
                                 json.loads(exported.read("tasks.json")))
    ls_export = label_studio.call("GET", f"/api/projects/{project['id']}/export?exportType=JSON")
    back = io.BytesIO()
    with zipfile.ZipFile(back, "w") as archive:
        archive.writestr("export.json", json.dumps(ls_export))
        for name in exported.namelist():  # Label Studio's export has no label config: the project's keeps the
            if name.startswith("images/") or name == "label_config.xml":  # class order (else sorted by name)
                archive.writestr(name, exported.read(name))
    second = client.post("/api/datasets", data={"name": f"ls-{kind}-back", "task": kind},
                         files={"file": ("back.zip", back.getvalue())})
    result = {"kind": kind, "label_studio": {"project": project["id"], "tasks": imported.get("task_count"),
                                             "annotations": imported.get("annotation_count")},
              "back": second.status_code}
    if second.status_code != 201:
        return {**result, "error": second.json()}
    before, after = (_counts(client, dataset["id"]) for dataset in (first.json(), second.json()))
    return {**result, "format_detected": second.json()["format"], "same": before == after, "before": before,
            "after": after}


def _counts(client, dataset_id: int) -> dict:
    stats = client.get(f"/api/datasets/{dataset_id}/stats").json()
    return {"classes": client.get(f"/api/datasets/{dataset_id}").json()["class_names"],
            "splits": {split: {"images": values["images"],
                               "instances": {name: counts["instances"] for name, counts in values["classes"].items()}}
                       for split, values in stats["splits"].items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True, help="a legacy API token")
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    from imagerec.app import create_app
    from imagerec.config import Settings

    label_studio = LabelStudio(args.url, args.token)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        key = "irk-roundtrip-admin-key"
        settings = Settings(data_dir=work / "data", admin_key=key, default_workers=0)
        with TestClient(create_app(settings), base_url="http://localhost",
                        headers={"Authorization": f"Bearer {key}"}) as client:
            results = [round_trip(kind, client, label_studio, work) for kind in KINDS]
    print(json.dumps(results, indent=1))
    return 0 if all(result.get("same") for result in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
