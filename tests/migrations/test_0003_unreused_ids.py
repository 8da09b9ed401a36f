"""Revision 0003 on a database that already has rows: everything kept, ids never reused from then on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command

from imagerec.config import Settings
from imagerec.db import unit_of_work
from imagerec.migrations import alembic_config
from imagerec.tasks.models import Task
from tests.helpers import api_client

NOW = "2026-01-01 00:00:00.000000"
REBUILT = ("datasets", "model_versions", "tasks")


def _database_at_0002(path: Path) -> None:
    """Two of each row, linked like a real server's: model 2 trained on dataset 2 by task 2, from model 1."""
    command.upgrade(alembic_config(f"sqlite:///{path}"), "0002")
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys=ON")
    for i in (1, 2):
        db.execute("INSERT INTO datasets (id, name, task, storage_path, source, class_names, summary, created_at) "
                   "VALUES (?, ?, 'detect', ?, 'upload', '[\"a\"]', '{}', ?)", (i, f"set-{i}", f"datasets/{i}", NOW))
        db.execute("INSERT INTO tasks (id, kind, type, status, params, cancel_requested, resume_requested, attempt, "
                   "progress, created_at) VALUES (?, 'training', 'regular', 'succeeded', '{}', 0, 0, 1, 1.0, ?)",
                   (i, NOW))
        db.execute("INSERT INTO task_logs (task_id, created_at, level, message) VALUES (?, ?, 'info', 'done')",
                   (i, NOW))
        db.execute("INSERT INTO task_metrics (task_id, epoch, \"values\", created_at) VALUES (?, 1, '{}', ?)",
                   (i, NOW))
        db.execute("INSERT INTO task_refs (task_id, ref_kind, ref_id, role) VALUES (?, 'dataset', ?, 'dataset')",
                   (i, i))
        db.execute("INSERT INTO model_versions (id, name, task, architecture, class_names, imgsz, metrics, "
                   "weights_path, info, dataset_id, training_task_id, parent_id, created_at, is_default) VALUES "
                   "(?, ?, 'detect', 'yolov8n', '[\"a\"]', 64, '{}', ?, '{}', ?, ?, ?, ?, ?)",
                   (i, f"model-{i}", f"models/{i}/best.pt", i, i, 1 if i == 2 else None, NOW, i == 1))
    db.commit()
    db.close()


def _rows(path: Path) -> dict[str, list[tuple]]:
    db = sqlite3.connect(path)
    try:
        return {table: db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in (*REBUILT, "task_logs", "task_metrics", "task_refs")}
    finally:
        db.close()


@pytest.fixture
def upgraded(tmp_path: Path) -> tuple[Path, dict, dict]:
    path = tmp_path / "data" / "imagerec.db"
    path.parent.mkdir()
    _database_at_0002(path)
    before = _rows(path)
    command.upgrade(alembic_config(f"sqlite:///{path}"), "head")
    return path, before, _rows(path)


def test_rows_and_links_are_kept(upgraded):
    _path, before, after = upgraded
    for table in ("task_logs", "task_metrics", "task_refs", "tasks", "datasets", "model_versions"):
        # later revisions add columns at the end (deleted_at, created_by, ...): empty on the rows that were there,
        # but for a dataset's version (0006), which is 1
        assert [row[:len(old)] for row, old in zip(after[table], before[table])] == before[table], table
        assert len(after[table]) == len(before[table]), table
        added = [row[len(old):] for row, old in zip(after[table], before[table])]
        expected = (None, None, 1, None, None) if table == "datasets" else None
        assert all(values == expected if expected else all(v is None for v in values) for values in added), table


def test_tables_say_autoincrement_and_keep_their_indexes(upgraded):
    path, _before, _after = upgraded
    db = sqlite3.connect(path)
    schema = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall())
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    db.close()
    for table in REBUILT:
        assert "id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT" in schema[table], schema[table]
    assert schema["uq_datasets_live_name"].endswith("ON datasets (name, version) WHERE deleted_at IS NULL")
    assert schema["uq_model_versions_default_task"].endswith("WHERE is_default")
    assert {"ix_tasks_status_created", "ix_model_versions_training_task_id"} <= set(schema)
    assert "UNIQUE (name)" not in schema["datasets"]
    for reference in ("REFERENCES datasets (id)", "REFERENCES model_versions (id)", "REFERENCES tasks (id)"):
        assert reference in schema["model_versions"]


def test_the_server_on_an_upgraded_database_never_reuses_an_id(upgraded, tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data", default_workers=0)
    with api_client(settings) as client:
        assert client.get("/api/models/2").json()["parent"]["name"] == "model-1"
        assert client.delete("/api/tasks/2").status_code == 204  # the newest task, gone for good
        assert client.delete("/api/models/2").status_code == 200
        with unit_of_work(client.app.state.session_factory) as session:
            task = Task(kind="training", type="regular", params={}, status="failed")
            session.add(task)
            session.flush()
            assert task.id == 3  # SQLite alone would have handed out 2 again
        assert client.get("/api/models/1").json()["is_default"] is True


def test_downgrade_and_upgrade_again(upgraded):
    path, before, _after = upgraded
    command.downgrade(alembic_config(f"sqlite:///{path}"), "0002")
    assert _rows(path) == before
    command.upgrade(alembic_config(f"sqlite:///{path}"), "head")
    assert _rows(path)["task_logs"] == before["task_logs"]
