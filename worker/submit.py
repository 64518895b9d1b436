"""Submitting a catalogue job, for a merchant backend that imports copygen (and for the CLI).

    from worker.submit import submit_job, wait_for_job
    job_id = submit_job(products, variants=3, length="short", idempotency_key="spring-sale-0001")

Submission validates every row (bad rows are reported and stored on the job as `rejected`; they
do not stop the others), checks the model version, writes the job and its items in ONE
transaction, and only after that commits enqueues one copygen.generate_chunk message per chunk
(ids only) on the job's queue. If the broker is unreachable at that moment the job stays in SQL
with its chunks pending and the reconciler enqueues them later: nothing is lost.

With the embedded default broker ``memory://`` there is no worker to send to: the chunks run in
this process, through the same run_chunk the task calls, with the Generator loaded once from
COPYGEN_CHECKPOINT (or from the registered path of the job's model version).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from copygen.catalogue import (
    CatalogueError,
    JobSettings,
    Product,
    RowError,
    rejection_message,
    validate_payload,
    validate_products,
    validate_settings,
)
from copygen.settings import Settings, get_settings
from db.engine import session_scope
from db.jobs import create_job, finish_job, job_chunks, job_progress
from db.model_versions import get_model_version, list_model_versions

if TYPE_CHECKING:
    from celery import Celery
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

GENERATE_CHUNK = "copygen.generate_chunk"
FINISHED = ("done", "partial", "failed")


class ModelVersionError(ValueError):
    """The job names a model version that is not registered."""


@dataclass
class Submission:
    job_id: str
    created: bool  # False: the idempotency key already named this job; nothing was written
    accepted: int  # products in the job
    rejected: list[RowError] = field(default_factory=list)  # rows refused by this submission


def check_model_version(s: Session, name: str | None) -> dict[str, Any] | None:
    """The registered model version `name` (None for none); ModelVersionError if it is unknown."""
    if name is None:
        return None
    found = get_model_version(s, name)
    if found is None:
        known = [row["name"] for row in list_model_versions(s)]
        listed = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "") if known else "none yet"
        raise ModelVersionError(f"settings.model_version: unknown model version {name!r} (registered: {listed}; "
                                "register one with `copygen models`)")
    return found


def write_job(
    s: Session,
    products: list[Product],
    job: JobSettings,
    *,
    settings: Settings,
    idempotency_key: str | None,
    rejected: Iterable[RowError] = (),
) -> tuple[str, bool]:
    """Write the job, its items and chunks in the caller's transaction; (job_id, created)."""
    check_model_version(s, job.model_version)
    return create_job(
        s,
        products=[p.to_json() for p in products],
        settings=job.to_json(),
        model_version=job.model_version,
        chunk_size=settings.chunk_size,
        queue=job.queue,
        idempotency_key=idempotency_key,
        campaign=job.campaign,
        rejected=[e.to_json() for e in rejected],
    )


def submit(
    products: Iterable[Product | Mapping[str, Any]],
    job: JobSettings,
    *,
    idempotency_key: str | None = None,
    settings: Settings | None = None,
    app: Celery | None = None,
    source: str = "payload",
    rejected: Iterable[RowError] = (),
    on_chunk: Callable[[int, int], None] | None = None,
) -> Submission:
    """Validate, write and dispatch a job; the Submission says what was accepted and rejected.

    Products may be Product objects (already validated, e.g. from read_catalogue) or mappings
    (validated here, row N = the N-th product). `rejected` carries row errors found earlier (by
    read_catalogue) so that they are stored on the job too. Raises CatalogueError when no row is
    valid, ModelVersionError for an unknown model version. on_chunk(done, total) reports progress
    of in-process execution (the embedded default).
    """
    from worker import runtime

    settings = settings or get_settings()
    items = list(products)
    valid = [p for p in items if isinstance(p, Product)]
    rows = [p for p in items if not isinstance(p, Product)]
    errors = list(rejected)
    if rows:
        checked, row_errors = validate_products(rows, source=source)
        valid += checked
        errors += row_errors
    if errors:
        log.warning("%s", rejection_message(source, errors))
    if not valid:
        raise CatalogueError(f"{source}: no valid product to submit"
                             + (f"\n{rejection_message(source, errors)}" if errors else ""), errors)
    if len(valid) > settings.max_products:
        raise CatalogueError(f"{source}: {len(valid)} products, more than the maximum of {settings.max_products} "
                             "per job (COPYGEN_MAX_PRODUCTS); split the catalogue into several jobs")

    engine = runtime.engine(settings)
    with session_scope(engine) as s:
        job_id, created = write_job(s, valid, job, settings=settings, idempotency_key=idempotency_key,
                                    rejected=errors)
        chunk_nos = job_chunks(s, job_id)
    log.info("job %s %s: %d products, %d rejected rows, %d chunks on queue %s", job_id,
             "created" if created else "already submitted", len(valid), len({e.row for e in errors}),
             len(chunk_nos), job.queue)
    dispatch(engine, settings, job_id, chunk_nos, job, created=created, app=app, on_chunk=on_chunk)
    return Submission(job_id, created, len(valid), errors)


def dispatch(
    engine: Engine,
    settings: Settings,
    job_id: str,
    chunk_nos: list[int],
    job: JobSettings,
    *,
    created: bool,
    app: Celery | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
) -> None:
    """After commit: run the chunks here (memory://) or enqueue them (only for a new job)."""
    from worker.celery_app import uses_memory_broker

    if uses_memory_broker(settings):
        run_in_process(engine, settings, job_id, chunk_nos, job.model_version, on_chunk=on_chunk)
    elif created:
        enqueue_chunks(app or app_for(settings), job_id, chunk_nos, job.queue)


_apps: dict[str, Celery] = {}


def app_for(settings: Settings) -> Celery:
    """A Celery app for sending, one per broker URL in this process (its connection pool is reused)."""
    from worker.celery_app import create_app

    if settings.broker_url not in _apps:
        _apps[settings.broker_url] = create_app(settings)
    return _apps[settings.broker_url]


def enqueue_chunks(app: Celery, job_id: str, chunk_nos: Iterable[int], queue: str) -> int:
    """Send one copygen.generate_chunk(job_id, chunk_no) per chunk to queue; returns how many.

    A broker that cannot be reached is logged, not raised: the job is committed and the
    reconciler enqueues its pending chunks once the broker is back.
    """
    from kombu.exceptions import OperationalError as BrokerError

    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for chunk_no in chunk_nos:
                app.send_task(GENERATE_CHUNK, args=(job_id, chunk_no), queue=queue, producer=producer)
                sent += 1
    except BrokerError as exc:
        log.warning("job %s: broker unreachable after %d chunk message(s) (%s); the reconciler will "
                    "enqueue the rest", job_id, sent, exc)
    return sent


def run_in_process(
    engine: Engine,
    settings: Settings,
    job_id: str,
    chunk_nos: Iterable[int],
    model_version: str | None = None,
    *,
    on_chunk: Callable[[int, int], None] | None = None,
) -> None:
    """Run a job's chunks in this process (the embedded default), each up to max_attempts times."""
    from worker import runtime
    from worker.pipeline import run_chunk

    checkpoint = None
    if model_version is not None:
        with session_scope(engine) as s:
            checkpoint = check_model_version(s, model_version)["path"]
    generator = runtime.generator(settings, checkpoint)
    chunk_nos = list(chunk_nos)
    for done, chunk_no in enumerate(chunk_nos, start=1):
        for _ in range(settings.max_attempts):
            if run_chunk(engine, generator, job_id, chunk_no, settings).status != "retry":
                break
        if on_chunk is not None:
            on_chunk(done, len(chunk_nos))
    with session_scope(engine) as s:
        finish_job(s, job_id)


def submit_job(
    products: Iterable[Product | Mapping[str, Any]],
    variants: int = 3,
    *,
    length: str = "medium",
    style: str = "ad",
    opening: str = "",
    temperature: float = 0.95,
    top_p: float = 0.7,
    seed: int | None = None,
    model_version: str | None = None,
    queue: str = "batch",
    campaign: str | None = None,
    idempotency_key: str | None = None,
    settings: Settings | None = None,
) -> str:
    """Submit a catalogue job and return its id; the same idempotency_key returns the same job.

    Settings are validated like a payload's (SettingsError names the field); invalid product
    rows are logged and stored on the job, valid ones go through (CatalogueError if none is).
    """
    settings = settings or get_settings()
    job = validate_settings(
        {"variants": variants, "length": length, "style": style, "opening": opening,
         "temperature": temperature, "top_p": top_p, "seed": seed, "model_version": model_version,
         "queue": queue, "campaign": campaign},
        settings.max_variants,
    )
    return submit(products, job, idempotency_key=idempotency_key, settings=settings).job_id


def submit_payload(payload: Mapping[str, Any], *, settings: Settings, app: Celery | None = None,
                   default_key: str | None = None) -> Submission:
    """Submit a copygen.submit_job payload (see copygen/schemas/submit_job.schema.json).

    SettingsError for a payload wrong as a whole; default_key is used when the payload has no
    idempotency_key (the task passes its own id, so a redelivery creates no second job).
    """
    products, errors, job, key = validate_payload(payload, settings.max_variants, settings.max_products)
    return submit(products, job, idempotency_key=key or default_key, settings=settings, app=app,
                  rejected=errors)


def wait_for_job(
    engine: Engine,
    job_id: str,
    poll: float = 1.0,
    *,
    timeout: float | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll SQL until the job is done, partial or failed; return its final job_progress().

    Raises LookupError for an unknown job and TimeoutError after `timeout` seconds.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        with session_scope(engine) as s:
            progress = job_progress(s, job_id)
        if progress is None:
            raise LookupError(f"no job {job_id}")
        if on_progress is not None:
            on_progress(progress)
        if progress["status"] in FINISHED:
            return progress
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} still {progress['status']} after {timeout:g} s "
                               f"({progress['chunks_done']} of {progress['chunks_total']} chunks done)")
        time.sleep(poll)
