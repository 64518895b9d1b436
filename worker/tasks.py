"""copygen's Celery tasks: thin shells with explicit names (the wire contract) over plain functions.

Messages carry ids only; every task re-reads its rows from SQL. No task stores a result.

copygen.submit_job's result is not stored either: a client that sends it by name finds its job in
SQL by idempotency key (``SELECT id FROM jobs WHERE idempotency_key = :key``). A payload without
an idempotency_key is given ``task:<celery task id>``, so the id that send_task returns finds the
job, and a redelivered submission creates no second job.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from celery import shared_task
from sqlalchemy.exc import DBAPIError

from worker import runtime
from worker.celery_app import settings_of, uses_memory_broker
from worker.pipeline import is_disconnect, run_chunk

log = logging.getLogger(__name__)

DB_RETRY_BASE_S = 5  # first wait after a database outage; doubles per retry ...
DB_RETRY_MAX_S = 300  # ... up to 5 minutes
DB_MAX_RETRIES = 24  # about 1.5 hours of outage; after that the reconciler takes over
ERROR_RETRY_BASE_S = 2  # first wait before another attempt of a chunk whose generation failed


@contextmanager
def soft_time_limit(seconds: float) -> Iterator[None]:
    """Raise SoftTimeLimitExceeded in this task after `seconds`, where the pool cannot.

    The prefork pool enforces Celery's time limits from its parent process; the solo pool (the
    default of `copygen worker`: one model per process) runs the task in the worker's main thread
    and enforces none, so a chunk that hangs would hold the worker for good. There, a SIGALRM
    timer raises SoftTimeLimitExceeded inside the task: run_chunk records it against the chunk
    (retried, then parked like any failure) and the worker moves on. Elsewhere (a pool child, a
    thread) this does nothing.
    """
    from billiard.process import current_process
    from celery.exceptions import SoftTimeLimitExceeded

    if (not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread()
            or current_process().name != "MainProcess"):
        yield
        return

    def expire(_signum, _frame):
        raise SoftTimeLimitExceeded(f"the chunk ran past COPYGEN_TASK_SOFT_TIME_LIMIT ({seconds:g} s)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def backoff(retries: int, base: float, cap: float = DB_RETRY_MAX_S) -> float:
    """Exponential backoff with full jitter: workers coming back together do not stampede."""
    return random.uniform(base / 2, min(cap, base * 2**retries))


@shared_task(name="copygen.generate_chunk", bind=True, acks_late=True, ignore_result=True, max_retries=None)
def generate_chunk(self, job_id: str, chunk_no: int) -> None:
    settings = settings_of(self.app)
    try:
        with soft_time_limit(settings.task_soft_time_limit):
            outcome = run_chunk(runtime.engine(settings), runtime.generator(settings), job_id, int(chunk_no),
                                settings)
    except DBAPIError as exc:
        if not is_disconnect(exc) or self.request.retries >= DB_MAX_RETRIES:
            raise
        delay = backoff(self.request.retries, DB_RETRY_BASE_S)
        log.warning("job %s chunk %s: database unavailable; retry in %.0f s", job_id, chunk_no, delay)
        raise self.retry(exc=exc, countdown=delay) from None
    if outcome.status == "retry":  # error recorded in SQL, chunk pending again: try again soon
        raise self.retry(countdown=backoff(self.request.retries, ERROR_RETRY_BASE_S), max_retries=None)


@shared_task(name="copygen.submit_job", bind=True, acks_late=True, ignore_result=True)
def submit_job(self, **payload) -> str:
    """Validate a payload (copygen/schemas/submit_job.schema.json), write the job, enqueue its chunks."""
    from copygen.catalogue import SettingsError
    from worker.submit import submit_payload

    settings = settings_of(self.app)
    try:
        submission = submit_payload(payload, settings=settings, app=self.app, default_key=f"task:{self.request.id}")
    except SettingsError as exc:  # a payload wrong as a whole: retrying cannot help
        log.error("copygen.submit_job %s refused: %s", self.request.id, exc)
        raise
    except DBAPIError as exc:
        if not is_disconnect(exc):
            raise
        raise self.retry(exc=exc, countdown=backoff(self.request.retries, DB_RETRY_BASE_S),
                         max_retries=DB_MAX_RETRIES) from None
    return submission.job_id


@shared_task(name="copygen.reconcile", bind=True, ignore_result=True)
def reconcile(self) -> dict:
    from worker.reconcile import reconcile as reconcile_now

    settings = settings_of(self.app)
    return reconcile_now(runtime.engine(settings), self.app, settings)


@shared_task(name="copygen.fire_promo", bind=True, acks_late=True, ignore_result=True)
def fire_promo(self, schedule: str, slot: str | None = None) -> str | None:
    from worker.schedule import fire_promo as fire

    settings = settings_of(self.app)
    if uses_memory_broker(settings):
        log.warning("fire_promo %s: COPYGEN_BROKER_URL is memory://; the promo job runs in this process", schedule)
    return fire(runtime.engine(settings), self.app, settings, schedule, slot)
