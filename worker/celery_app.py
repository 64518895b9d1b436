"""The Celery app: JSON only, late acknowledgement, prefetch 1, no result backend.

Two ways to get an app:

- ``create_app(settings)`` configures a new app from a Settings object right away; the CLI
  (``copygen worker``, ``copygen beat``), tests and ``submit_job`` use it.
- ``app`` below is for ``celery -A worker.celery_app worker|beat|flower``. It is created at
  import with no configuration; its configuration is a promise (``Celery.add_defaults`` with a
  callable) that reads ``get_settings()`` the first time Celery needs a setting, which is after
  the ``celery`` command line has started. Importing this module reads no settings, opens no
  connection and loads no model.

Wire contract (task names; arguments are JSON):

    copygen.generate_chunk(job_id: str, chunk_no: int)
    copygen.submit_job(**payload)          payload = copygen/schemas/submit_job.schema.json
    copygen.reconcile()
    copygen.fire_promo(schedule: str, slot: str | None = None)

Queues: ``interactive`` and ``batch``. A job's chunks go to the queue its settings name; the
other tasks go to ``batch`` (the default queue). A client that does not share this config and
names no queue sends to Celery's default queue ``celery``, which workers also consume by default,
so ``send_task("copygen.submit_job", kwargs=payload)`` works as written; ``queue="interactive"``
puts a submission ahead of batch work.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from kombu import Queue

from copygen.settings import Settings, get_settings, mask_url

log = logging.getLogger(__name__)

QUEUES = ("interactive", "batch")  # a job's chunks go to the queue its settings name
DEFAULT_QUEUE = "batch"  # copygen's own messages that name no queue
# Celery's default queue: where a client that knows nothing of copygen sends
# send_task("copygen.submit_job", kwargs=...) when it names no queue. Workers consume it too.
CLIENT_QUEUE = "celery"
WORKER_QUEUES = (*QUEUES, CLIENT_QUEUE)
RECONCILE = "copygen.reconcile"


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration for copygen, from its settings."""
    if settings.visibility_timeout <= settings.task_time_limit:
        raise ValueError(
            f"COPYGEN_VISIBILITY_TIMEOUT ({settings.visibility_timeout} s) must exceed COPYGEN_TASK_TIME_LIMIT "
            f"({settings.task_time_limit} s), or Redis hands a running chunk to a second worker"
        )
    if settings.task_soft_time_limit >= settings.task_time_limit:
        raise ValueError(
            f"COPYGEN_TASK_SOFT_TIME_LIMIT ({settings.task_soft_time_limit} s) must be below "
            f"COPYGEN_TASK_TIME_LIMIT ({settings.task_time_limit} s)"
        )
    if settings.lease_seconds < settings.task_time_limit:
        log.warning(
            "COPYGEN_LEASE_SECONDS (%s) is shorter than COPYGEN_TASK_TIME_LIMIT (%s): a slow chunk may be "
            "re-enqueued while it still runs (no duplicate rows, but wasted work)",
            settings.lease_seconds, settings.task_time_limit,
        )
    beat_schedule: dict[str, dict[str, Any]] = {
        RECONCILE: {
            "task": RECONCILE,
            "schedule": float(settings.reconcile_seconds),
            # a reconcile that waited longer than its period is superseded by the next one
            "options": {"queue": DEFAULT_QUEUE, "expires": float(settings.reconcile_seconds)},
        }
    }
    timezone = "UTC"
    if settings.schedule_file:
        from worker.schedule import beat_entries, load_schedules, schedules_timezone

        schedules = load_schedules(settings.schedule_file, settings.max_variants)
        beat_schedule.update(beat_entries(schedules))
        timezone = schedules_timezone(schedules)
    return {
        "broker_url": settings.broker_url,
        # Only JSON crosses the broker: a pickled message is refused, never unpickled.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "event_serializer": "json",
        # Results are never stored: progress and output live in SQL.
        "task_ignore_result": True,
        "result_backend": None,
        "task_store_errors_even_if_ignored": False,
        # At-least-once delivery; SQL's attempt counter and lease make the effects exactly-once.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": {"visibility_timeout": settings.visibility_timeout},
        "task_soft_time_limit": settings.task_soft_time_limit,
        "task_time_limit": settings.task_time_limit,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,  # a worker outlives a Redis outage of any length
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_queues": [Queue(name, routing_key=name) for name in WORKER_QUEUES],
        "task_default_queue": DEFAULT_QUEUE,
        "task_create_missing_queues": False,
        "beat_schedule": beat_schedule,
        "timezone": timezone,
        "enable_utc": True,
    }


def create_app(settings: Settings | None = None) -> Celery:
    """A Celery app with copygen's tasks; configured from settings, or lazily from the environment."""
    app = Celery("copygen")
    app.copygen_settings = settings  # read by settings_of(); None means get_settings() when needed
    if settings is None:
        app.add_defaults(lambda: celery_config(get_settings()))
    else:
        app.add_defaults(celery_config(settings))
    import worker.tasks  # noqa: F401  (registers the copygen.* shared tasks on every app)

    return app


def settings_of(app: Celery) -> Settings:
    """The Settings an app was made with (the process's get_settings() for the lazy app)."""
    settings = getattr(app, "copygen_settings", None)
    return settings if settings is not None else get_settings()


def is_copygen_app(app: Celery | None) -> bool:
    return app is not None and hasattr(app, "copygen_settings")


def uses_memory_broker(settings: Settings) -> bool:
    """The embedded default: no broker, jobs run in the submitting process."""
    return settings.broker_url.startswith("memory://")


def worker_argv(
    *,
    queues: str | list[str] | tuple[str, ...] = WORKER_QUEUES,
    concurrency: int = 1,
    pool: str = "solo",
    loglevel: str = "INFO",
    hostname: str | None = None,
) -> list[str]:
    """The argv of `celery worker` for app.worker_main(); one model per process, so solo by default."""
    if isinstance(queues, str):
        queues = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in queues if q not in WORKER_QUEUES]
    if unknown:
        raise ValueError(f"--queues: unknown queue(s) {', '.join(unknown)}; choose from {', '.join(WORKER_QUEUES)}")
    argv = ["worker", f"--pool={pool}", f"--concurrency={concurrency}", f"--queues={','.join(queues)}",
            f"--loglevel={loglevel}"]
    if hostname:
        argv.append(f"--hostname={hostname}")
    return argv


def run_worker(settings: Settings, **options) -> None:
    """Run a worker in this process until it is stopped (the CLI's `copygen worker`).

    The checkpoint is checked first, so a bad one fails here with one line (CheckpointError).
    """
    from trainer.checkpoint import load_manifest

    if uses_memory_broker(settings):
        raise ValueError("COPYGEN_BROKER_URL is memory:// (the embedded default): jobs run in the submitting "
                         "process; point it at Redis (redis://...) to run workers")
    load_manifest(settings.checkpoint)
    log.info("worker on %s, checkpoint %s", mask_url(settings.broker_url), settings.checkpoint)
    create_app(settings).worker_main(worker_argv(**options))


def run_beat(settings: Settings, *, schedule_db: str | None = None, loglevel: str = "INFO") -> None:
    """Run Celery beat in this process (the CLI's `copygen beat`): the reconciler and promo schedules."""
    argv = ["beat", f"--loglevel={loglevel}"]
    if schedule_db:
        argv.append(f"--schedule={schedule_db}")
    create_app(settings).start(argv)


# For `celery -A worker.celery_app ...`: configured from COPYGEN_* on first use, not at import.
app = create_app()
