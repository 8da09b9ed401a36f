"""The one place Celery is configured, for the API (which only sends) and for ``imagerec worker``.

Celery carries the work, the database carries the state: a message says only "run task N"; the task's row says
what to run, who owns it and how it ended. So:

- no result backend (results are task rows);
- JSON messages;
- ``task_acks_late`` with ``task_reject_on_worker_lost``: a message is acknowledged only once its task ended, and
  a worker that dies mid-task puts it back, so a message is never lost;
- ``worker_prefetch_multiplier=1``: a worker holds no more messages than it has free slots, and a long training
  does not sit on messages other workers could run;
- no time limits (a training takes as long as it takes).

A message delivered twice (a redelivery after the broker's visibility timeout, a resend of a task whose sending
looked lost) cannot start a second run: the worker's claim is a conditional UPDATE of the task's row
(``tasks.repository.claim``), and only a queued task can be claimed.
"""

from __future__ import annotations

from celery import Celery

from imagerec.config import Settings

RUN_TASK = "imagerec.run_task"
VISIBILITY_TIMEOUT_SECONDS = 12 * 3600  # a message unacknowledged this long is delivered again (claim guards it)


def make_celery(settings: Settings) -> Celery:
    app = Celery("imagerec", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=None,
        task_soft_time_limit=None,
        task_default_queue=settings.default_queue,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
        worker_send_task_events=False,
    )
    return app
