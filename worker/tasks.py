"""copygen's Celery tasks: thin shells with explicit names (the wire contract) over plain functions.

Messages carry ids only; every task re-reads its rows from SQL. No task stores a result.

copygen.submit_job's result is not stored either: a client that sends it by name finds its job in
SQL by idempotency key (``SELECT id, status, rejected FROM jobs WHERE idempotency_key = :key``).
A payload without an idempotency_key is given ``task:<celery task id>``, so the id that send_task
returns finds the job, and a redelivered submission creates no second job. A payload refused as a
whole is found the same way, as a job with status ``refused`` and its reasons in ``rejected``
(worker.submit.submit_message).

The functions are named ``*_task`` so they never shadow the plain functions they call (the Python
API ``worker.submit.submit_job`` is not this task).
"""

from __future__ import annotations

import logging

from celery import shared_task
from sqlalchemy.exc import DBAPIError

from worker import runtime
from worker.celery_app import settings_of
from worker.config import FIRE_PROMO, GENERATE_CHUNK, RECONCILE, RECORD_REVIEW, SUBMIT_JOB
from worker.dispatch import DB_MAX_RETRIES, DB_RETRY_BASE_S, backoff, execute_chunk
from worker.pipeline import is_disconnect
from worker.reconcile import reconcile
from worker.review import ReviewPayloadError, record_review_payload
from worker.schedule import fire_promo, slot_now
from worker.submit import submit_message

log = logging.getLogger(__name__)


@shared_task(name=GENERATE_CHUNK, bind=True, acks_late=True, ignore_result=True, max_retries=None)
def generate_chunk_task(self, job_id: str, chunk_no: int) -> None:
    settings = settings_of(self.app)
    rt = runtime.current()
    outcome = execute_chunk(rt, settings, lambda: rt.generator(settings), job_id, int(chunk_no),
                            retries=self.request.retries)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(name=SUBMIT_JOB, bind=True, acks_late=True, ignore_result=True)
def submit_job_task(self, *args, **payload) -> str:
    """Validate a payload (copygen/schemas/submit_job.schema.json), write the job, enqueue its chunks.

    A payload refused as a whole is recorded in SQL and raised (retrying cannot help); a database
    outage, also while recording a refusal, is retried with backoff.
    """
    settings = settings_of(self.app)
    try:
        submission = submit_message(args, payload, settings=settings, app=self.app, task_id=self.request.id)
    except DBAPIError as exc:
        if not is_disconnect(exc):
            raise
        raise self.retry(exc=exc, countdown=backoff(self.request.retries, DB_RETRY_BASE_S),
                         max_retries=DB_MAX_RETRIES) from None
    return submission.job_id


@shared_task(name=RECONCILE, bind=True, ignore_result=True)
def reconcile_task(self) -> dict:
    return reconcile(runtime.current(), self.app, settings_of(self.app))


@shared_task(name=FIRE_PROMO, bind=True, acks_late=True, ignore_result=True)
def fire_promo_task(self, schedule: str, slot: str | None = None) -> str | None:
    settings = settings_of(self.app)
    slot = slot or slot_now(settings, schedule)  # fixed now: a retry fires the same slot, not the next one
    try:
        return fire_promo(runtime.current(), self.app, settings, schedule, slot)
    except DBAPIError as exc:
        if not is_disconnect(exc):
            raise
        raise self.retry(args=(schedule, slot), exc=exc, countdown=backoff(self.request.retries, DB_RETRY_BASE_S),
                         max_retries=DB_MAX_RETRIES) from None


@shared_task(name=RECORD_REVIEW, bind=True, acks_late=True, ignore_result=True)
def record_review_task(self, **payload) -> None:
    """Record reviewers' decisions (copygen/schemas/record_review.schema.json); refusals are logged."""
    try:
        record_review_payload(payload, settings=settings_of(self.app), task_id=self.request.id)
    except ReviewPayloadError as exc:  # wrong as a whole: retrying cannot help
        log.error("copygen.record_review %s refused: %s", self.request.id, exc)
        raise
    except DBAPIError as exc:
        if not is_disconnect(exc):
            raise
        raise self.retry(exc=exc, countdown=backoff(self.request.retries, DB_RETRY_BASE_S),
                         max_retries=DB_MAX_RETRIES) from None
