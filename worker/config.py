"""The wire contract (task names, queues) and the Celery configuration made from Settings.

Task names; arguments are JSON:

    copygen.generate_chunk(job_id: str, chunk_no: int)
    copygen.submit_job(**payload)          payload = copygen/schemas/submit_job.schema.json
    copygen.reconcile()
    copygen.fire_promo(schedule: str, slot: str | None = None)
    copygen.record_review(**payload)       payload = copygen/schemas/record_review.schema.json

Queues: ``interactive`` and ``batch``. A job's chunks go to the queue its settings name; the
other tasks go to ``batch`` (the default queue). A client that does not share this config and
names no queue sends to Celery's default queue ``celery``, which workers also consume by default,
so ``send_task("copygen.submit_job", kwargs=payload)`` works as written; ``queue="interactive"``
puts a submission ahead of batch work.

This module is the bottom of worker/: it imports nothing of worker/, so every layer can use it.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu import Queue

from copygen.catalogue import DEFAULT_QUEUE
from copygen.catalogue import QUEUES as JOB_QUEUES
from copygen.settings import Settings

log = logging.getLogger(__name__)

GENERATE_CHUNK = "copygen.generate_chunk"
SUBMIT_JOB = "copygen.submit_job"
RECONCILE = "copygen.reconcile"
FIRE_PROMO = "copygen.fire_promo"
RECORD_REVIEW = "copygen.record_review"
# A Celery inspect command each worker answers with the model it serves (`copygen health` asks it).
MODEL_COMMAND = "copygen_model"

# DEFAULT_QUEUE (a job's default queue) also takes copygen's own messages that name no queue.
# Celery's default queue: where a client that knows nothing of copygen sends
# send_task("copygen.submit_job", kwargs=...) when it names no queue. Workers consume it too.
CLIENT_QUEUE = "celery"
WORKER_QUEUES = (*JOB_QUEUES, CLIENT_QUEUE)

# Beat's scheduler: the reconciler always, promo schedules read from the schedule file when beat
# starts (a bad schedule file stops beat, never a worker or a submission).
BEAT_SCHEDULER = "worker.schedule:PromoScheduler"


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration for copygen, from its settings; ValueError for limits that contradict."""
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
    return {
        "broker_url": settings.broker_url,
        # Only JSON crosses the broker: a pickled message is refused, never unpickled.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "event_serializer": "json",
        # Task events on, so Flower and Celery Prometheus exporters (celery-exporter) see copygen's tasks
        # with no flags: workers send task-started/succeeded/failed..., senders task-sent.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
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
        "beat_scheduler": BEAT_SCHEDULER,
        "beat_schedule": {
            RECONCILE: {
                "task": RECONCILE,
                "schedule": float(settings.reconcile_seconds),
                # a reconcile that waited longer than its period is superseded by the next one
                "options": {"queue": DEFAULT_QUEUE, "expires": float(settings.reconcile_seconds)},
            }
        },
        "beat_schedule_filename": str(settings.beat_state),
        "timezone": "UTC",
        "enable_utc": True,
    }
