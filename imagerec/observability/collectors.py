"""What a scrape reads, at scrape time only: the task table, the executor, the model cache, the limiter.

Each collector holds ``app.state`` and finds the resources there when asked (``lifespan`` builds them after the
registry exists); before start-up, or after shut-down, it reports nothing. The per-task gauges carry the task id
as a label: only running tasks appear, so their number is bounded by the executor's concurrency.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from imagerec.db import read_session
from imagerec.observability import repository
from imagerec.tasks.models import TaskKind, TaskStatus

TASK_LABELS = ["task_id", "kind", "type"]


class TaskCollector:
    def __init__(self, state: Any) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        factory = getattr(self.state, "session_factory", None)
        if factory is None:
            return
        with read_session(factory) as session:
            counts = repository.count_by_kind_and_status(session)
            running = repository.running_progress(session)
        yield from task_counts(counts)
        yield from running_tasks(running)


def task_counts(counts: dict[tuple[str, str], int]) -> Iterator[Metric]:
    every = {(kind.value, status.value): 0 for kind in TaskKind for status in TaskStatus}  # a zero, not a gap
    every.update(counts)
    by_status = GaugeMetricFamily("imagerec_tasks", "Task records by kind and status.", labels=["kind", "status"])
    for (kind, status), count in sorted(every.items()):
        by_status.add_metric([kind, status], count)
    yield by_status
    for status in (TaskStatus.queued, TaskStatus.running):
        total = sum(count for (_, each), count in counts.items() if each == status)
        what = "waiting for the executor (the queue depth)" if status == TaskStatus.queued else "being worked on"
        yield GaugeMetricFamily(f"imagerec_tasks_{status}", f"Tasks of every kind {what}.", value=total)


def running_tasks(rows) -> Iterator[Metric]:
    epoch = GaugeMetricFamily("imagerec_task_epoch", "A running task's epoch, as its record reports it.",
                              labels=TASK_LABELS)
    total = GaugeMetricFamily("imagerec_task_total_epochs", "The epochs a running task trains for.",
                              labels=TASK_LABELS)
    progress = GaugeMetricFamily("imagerec_task_progress_ratio", "A running task's progress, 0 to 1.",
                                 labels=TASK_LABELS)
    eta = GaugeMetricFamily("imagerec_task_eta_seconds", "A running task's estimated time left.", labels=TASK_LABELS)
    for row in rows:
        labels = [str(row.id), row.kind, row.type]
        progress.add_metric(labels, row.progress)
        for family, value in ((epoch, row.epoch), (total, row.total_epochs), (eta, row.eta_seconds)):
            if value is not None:  # an annotation job has no epochs; a task just started has no ETA yet
                family.add_metric(labels, value)
    yield from (epoch, total, progress, eta)


class RuntimeCollector:
    """The executor's state and what auto-annotation counts already (model cache, limiter)."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        if (executor := getattr(self.state, "executor", None)) is not None:
            yield from executor_state(executor.state())
        if (runtime := getattr(self.state, "annotation_runtime", None)) is not None:
            yield from annotation_state(runtime.cache, runtime.limiter)


def executor_state(state: dict) -> Iterator[Metric]:
    kind = [state["kind"]]
    for name, help_, value in (
        ("imagerec_executor_up", "1 while the executor's loop runs.", int(state["running"])),
        ("imagerec_executor_concurrency", "Tasks the executor runs at once.", state["concurrency"]),
        ("imagerec_executor_active_tasks", "Tasks the executor runs now.", len(state["active_tasks"])),
    ):
        family = GaugeMetricFamily(name, help_, labels=["kind"])
        family.add_metric(kind, value)
        yield family


def annotation_state(cache, limiter) -> Iterator[Metric]:
    yield CounterMetricFamily("imagerec_model_cache_hits", "Annotation requests that found their model loaded "
                              "(or waited for a load another request started).", value=cache.hits)
    yield CounterMetricFamily("imagerec_model_cache_misses", "Annotation requests that started a model load.",
                              value=cache.misses)
    yield CounterMetricFamily("imagerec_model_cache_loads", "Models loaded successfully.", value=cache.loads)
    yield CounterMetricFamily("imagerec_model_cache_evictions", "Models dropped to stay within the cache size.",
                              value=cache.evictions)
    yield GaugeMetricFamily("imagerec_model_cache_models", "Models loaded now.", value=len(cache))
    yield GaugeMetricFamily("imagerec_model_cache_capacity", "Models the cache keeps.", value=cache.capacity)
    yield CounterMetricFamily("imagerec_annotation_rejections", "Annotation requests refused with 429 (every "
                              "inference slot and waiting place taken).", value=limiter.rejected)
    yield GaugeMetricFamily("imagerec_annotation_running", "Annotation requests running inference now.",
                            value=limiter.running)
    yield GaugeMetricFamily("imagerec_annotation_waiting", "Annotation requests waiting for a slot now.",
                            value=limiter.waiting)
