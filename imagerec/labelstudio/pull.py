"""A Label Studio project's annotations, pulled into a folder the Label Studio importer reads.

``GET /api/projects/{id}/export?exportType=JSON`` through the project's connection gives every task with its
annotations. A task counts when it has a submitted, not cancelled annotation; the newest of those (by
``updated_at``, then ``created_at``, then id) is kept, the others dropped. Its labels are turned back into the
model's class names through the label config's mapping (``predicted_values``, case-insensitive names: the same
map the predictions use), so a label that stands for a class trains that class and a label the model does not
know becomes a new class. The task's image is fetched through the connection like a prediction's
(``images.ImageFetcher``), unless the dataset already holds it (``known``): then only its labels are read and
the dataset keeps its file. A task whose image cannot be fetched is left out and counted, with its reason.
The label config goes along with its labels renamed the same way, so the classes keep its order.

The folder holds ``export.json`` (tasks whose ``data.image`` is ``images/<task id>-<name>``, a name that stays
the same between pulls so a later version relabels the image), ``images/`` and the project's
``label_config.xml`` (for the class order).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
import httpx

from imagerec.config import Settings
from imagerec.errors import ImagerecError
from imagerec.labelstudio.client import Connection, TokenRefused, sync_client
from imagerec.labelstudio.images import LabelStudioUnavailable, open_fetcher
from imagerec.labelstudio.label_config import ControlKind, label_map, parse_label_config, with_labels_renamed

logger = logging.getLogger(__name__)

EXPORT_TIMEOUT_SECONDS = 300.0


@dataclass
class Pulled:
    tasks: int = 0  # tasks in the project
    annotated: int = 0  # with a submitted, not cancelled annotation
    fetched: int = 0  # images downloaded
    kept: int = 0  # images the dataset already held
    failed: dict[str, str] = field(default_factory=dict)  # task id -> why its image could not be had

    def as_dict(self) -> dict:
        return {"tasks": self.tasks, "annotated": self.annotated, "images_fetched": self.fetched,
                "images_kept": self.kept, "failed": len(self.failed), "failed_examples": dict(list(
                    self.failed.items())[:5])}


def export_tasks(connection: Connection, project: int, *, max_bytes: int) -> list[dict]:
    """The project's tasks as Label Studio exports them (its JSON export)."""
    url = f"{connection.url}/api/projects/{project}/export"
    try:
        with sync_client(connection, timeout=EXPORT_TIMEOUT_SECONDS) as client:
            with client.stream("GET", url, params={"exportType": "JSON"}) as response:
                _check(response, project)
                body = _read_limited(response, max_bytes)
    except TokenRefused as error:
        raise LabelStudioUnavailable(str(error)) from None
    except httpx.HTTPError as error:
        raise LabelStudioUnavailable(f"could not export project {project} from Label Studio: "
                                     f"{type(error).__name__}: {error}") from None
    tasks = json.loads(body)
    if not isinstance(tasks, list):
        raise LabelStudioUnavailable(f"Label Studio's export of project {project} is not a list of tasks")
    return [task for task in tasks if isinstance(task, dict)]


def _check(response: httpx.Response, project: int) -> None:
    if response.status_code in (401, 403):
        raise LabelStudioUnavailable(f"Label Studio refused the export of project {project} "
                                     f"({response.status_code}): the registered token's user must see the project")
    if response.status_code == 404:
        raise LabelStudioUnavailable(f"Label Studio has no project {project} (404)")
    if response.status_code >= 300:
        raise LabelStudioUnavailable(f"Label Studio answered {response.status_code} to the export of project "
                                     f"{project}")


def _read_limited(response: httpx.Response, max_bytes: int) -> bytes:
    chunks, received = [], 0
    for chunk in response.iter_bytes():
        received += len(chunk)
        if received > max_bytes:
            raise LabelStudioUnavailable(f"Label Studio's export is larger than the upload limit ({max_bytes} "
                                         "bytes, IMAGEREC_UPLOAD_MAX_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


def newest_annotation(task: dict) -> dict | None:
    submitted = [entry for entry in task.get("annotations") or []
                 if isinstance(entry, dict) and not entry.get("was_cancelled") and entry.get("result") is not None]
    if not submitted:
        return None
    return max(submitted, key=lambda entry: (str(entry.get("updated_at") or ""), str(entry.get("created_at") or ""),
                                             entry.get("id") if isinstance(entry.get("id"), int) else 0))


def class_renames(label_config: str | None, class_names: list[str]) -> dict[str, dict[str, str]]:
    """Per control name: Label Studio label -> the model class it stands for (keypoint labels name points)."""
    if not label_config or not class_names:
        return {}
    config = parse_label_config(label_config)
    return {control.name: {label: name for name, label in label_map(control, class_names).items()}
            for control in config.controls if control.kind is not ControlKind.keypoint}


def to_classes(result: list, back: dict[str, dict[str, str]]) -> list:
    """The regions with each label renamed to the model class it stands for (when it stands for one)."""
    if not back:
        return result
    renamed = []
    for region in result:
        value = region.get("value") if isinstance(region, dict) else None
        names = back.get(region.get("from_name")) if isinstance(value, dict) else None
        kind = str(region.get("type", "")).lower() if isinstance(region, dict) else ""
        if names and isinstance(value.get(kind), list):
            region = {**region, "value": {**value, kind: [names.get(label, label) for label in value[kind]]}}
        renamed.append(region)
    return renamed


def image_name(task: dict, reference: str) -> str:
    parts = urlsplit(reference)
    wanted = parse_qs(parts.query).get("d") or parse_qs(parts.query).get("fileuri")
    base = PurePosixPath(unquote(wanted[0] if wanted else parts.path)).name or "image"
    return f"{task.get('id')}-{base}"


def pull(connection: Connection, *, settings: Settings, project: int, label_config: str | None, image_key: str,
         class_names: list[str], folder: Path, known: Callable[[str], bool],
         cancelled: Callable[[], bool]) -> Pulled:
    """Write the project's annotated tasks, their images and its config into ``folder`` (see the docstring)."""
    tasks = export_tasks(connection, project, max_bytes=settings.upload_max_bytes)
    summary, chosen, back = Pulled(tasks=len(tasks)), [], class_renames(label_config, class_names)
    for task in tasks:
        annotation = newest_annotation(task)
        reference = (task.get("data") or {}).get(image_key)
        if annotation is None or not isinstance(reference, str):
            continue
        summary.annotated += 1
        name = image_name(task, reference)
        annotation = {**annotation, "result": to_classes(annotation["result"], back)}
        chosen.append((task, annotation, reference, name))
    (folder / "images").mkdir(parents=True, exist_ok=True)
    fetched = anyio.run(_fetch_all, settings, connection, chosen, folder, known, summary, cancelled)
    exported = [{"id": task.get("id"), "data": {**task["data"], image_key: f"images/{name}"},
                 "annotations": [annotation]} for task, annotation, _, name in chosen if name in fetched]
    (folder / "export.json").write_text(json.dumps(exported))
    if label_config:  # the class order; its labels renamed as the regions were
        (folder / "label_config.xml").write_text(with_labels_renamed(label_config, back))
    return summary


async def _fetch_all(settings: Settings, connection: Connection, chosen: list, folder: Path,
                     known: Callable[[str], bool], summary: Pulled, cancelled: Callable[[], bool]) -> set[str]:
    have: set[str] = set()
    async with open_fetcher(settings, connection) as fetcher:
        for index, (task, _annotation, reference, name) in enumerate(chosen):
            if index % 20 == 0 and cancelled():
                raise PullCancelled
            if known(name):
                summary.kept += 1
                have.add(name)
                continue
            try:
                image = await fetcher.fetch(reference)
            except ImagerecError as error:
                summary.failed[str(task.get("id"))] = error.message
                logger.warning("Label Studio task %s: image not fetched: %s", task.get("id"), error.message)
                continue
            (folder / "images" / name).write_bytes(image.data)
            summary.fetched += 1
            have.add(name)
    return have


class PullCancelled(Exception):
    pass
