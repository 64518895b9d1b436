"""Submitting a catalogue job, for a merchant backend that imports copygen (and for the CLI).

    from worker.submit import submit_job, wait_for_job
    job_id = submit_job(products, variants=3, length="short", idempotency_key="spring-sale-0001")

Submission first checks what the run needs (the copy store's schema: the embedded SQLite store is
created, any other database must have been migrated; in-process, the checkpoint), then validates
every row (bad rows are reported and stored on the job as `rejected`; they do not stop the
others), checks the model version, writes the job and its items in ONE transaction, and only after
that commits hands the chunks to worker.dispatch: one copygen.generate_chunk message each (ids
only) on the job's queue, or, with the embedded default broker ``memory://``, run in this process.
If the broker is unreachable at that moment the job stays in SQL with its chunks pending and the
reconciler enqueues them later: nothing is lost.

The same idempotency key always returns the same job, and nothing is dispatched again for it (a
lost message is the reconciler's business). The first submission's settings win: a later one
with other settings gets the existing job, and Submission.differs names the settings that differ.

A copygen.submit_job message refused as a whole (submit_message) is recorded under its key as a
job with status 'refused' and its reasons, since the client that sent it by name has no other way
to learn of it. The key's first holder wins here too: a later valid submission under the key of a
refused one is refused in turn ("already names a refused submission"); send it under a new key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from copygen.catalogue import (
    MAX_IDEMPOTENCY_KEY_CHARS,
    CatalogueError,
    JobSettings,
    Product,
    RowError,
    SettingsError,
    rejection_message,
    validate_payload,
    validate_products,
    validate_settings,
)
from copygen.settings import Settings, get_settings
from db.chunks import leased_chunks
from db.engine import session_scope
from db.jobs import FINISHED_JOB, create_job, get_job, job_chunks, job_progress, record_refusal
from db.model_versions import get_model_version, list_model_versions
from worker import runtime
from worker.dispatch import serve_model, start_chunks, use_score_weights
from worker.runtime import Runtime

log = logging.getLogger(__name__)


class ModelVersionError(ValueError):
    """The job names a model version that is not registered."""


@dataclass
class Submission:
    job_id: str
    created: bool  # False: the idempotency key already named this job; nothing was written
    accepted: int  # products in the job
    rejected: list[RowError] = field(default_factory=list)  # rows refused by this submission
    settings: dict[str, Any] = field(default_factory=dict)  # the job's settings (the first submission's)
    differs: list[str] = field(default_factory=list)  # settings given now that differ from the job's


def check_model_version(s: Session, name: str | None) -> dict[str, Any] | None:
    """The registered model version `name` (None for none); ModelVersionError if it is unknown."""
    if name is None:
        return None
    found = get_model_version(s, name)
    if found is None:
        known = [row["name"] for row in list_model_versions(s)]
        listed = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "") if known else "none yet"
        raise ModelVersionError(
            f"settings.model_version: unknown model version {name!r} (registered: {listed}). A version is "
            "registered when a worker starts with its checkpoint (`copygen worker --checkpoint DIR`) or, "
            "in the embedded mode, when a job is submitted with COPYGEN_CHECKPOINT=DIR; `copygen models` "
            "lists the checkpoints and their names")
    return found


def write_job(
    s: Session,
    products: list[Product],
    job: JobSettings,
    *,
    settings: Settings,
    idempotency_key: str | None,
    rejected: Iterable[RowError] = (),
    source: str = "payload",
) -> tuple[str, bool]:
    """Write the job, its items and chunks in the caller's transaction; (job_id, created).

    Every way a job is made (submission, promo firing) passes here, so every job is held to
    COPYGEN_MAX_PRODUCTS and to a registered model version.
    """
    if len(products) > settings.max_products:
        raise CatalogueError(f"{source}: {len(products)} products, more than the maximum of "
                             f"{settings.max_products} per job (COPYGEN_MAX_PRODUCTS); split the catalogue into "
                             "several jobs")
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


def accept_products(items: Iterable[Product | Mapping[str, Any]], rejected: Iterable[RowError] = (),
                    source: str = "payload") -> tuple[list[Product], list[RowError]]:
    """The valid products and every row error; CatalogueError when no product is valid.

    Product objects were validated already (e.g. by read_catalogue, whose errors come in as
    `rejected`); mappings are validated here, row N being the N-th product, and their errors logged.
    """
    items = list(items)
    valid = [p for p in items if isinstance(p, Product)]
    rows = [p for p in items if not isinstance(p, Product)]
    errors = list(rejected)
    if rows:
        checked, row_errors = validate_products(rows, source=source)
        valid += checked
        errors += row_errors
        if row_errors:
            log.warning("%s", rejection_message(source, row_errors))
    if not valid:
        raise CatalogueError(f"{source}: no valid product to submit"
                             + (f"\n{rejection_message(source, errors)}" if errors else ""), errors)
    return valid, errors


def prepare(rt: Runtime, settings: Settings) -> Engine:
    """What a job needs before anything is written: the copy store's schema, and in-process the checkpoint.

    SchemaError (run `copygen migrate`) or CheckpointError, each one line, or a ValueError for a
    score weights file that cannot be used; in-process, the checkpoint is registered as a model
    version so jobs may name it.
    """
    engine = rt.store(settings)
    if settings.in_process:
        use_score_weights(settings)
        serve_model(rt, settings)
    return engine


def settings_differ(given: JobSettings, stored: Mapping[str, Any]) -> list[str]:
    """Names of the settings whose given value differs from the stored job's (a setting a job stored
    before the setting existed counts as its default: what that job ran with)."""
    defaults = JobSettings().to_json()
    return [name for name, value in given.to_json().items() if stored.get(name, defaults[name]) != value]


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
    on_created: Callable[[str], None] | None = None,
) -> Submission:
    """Validate, write and dispatch a job; the Submission says what was accepted and rejected.

    Raises CatalogueError when no row is valid or there are too many, ModelVersionError for an
    unknown model version, SchemaError / CheckpointError when the run cannot happen (before
    anything is written). on_created(job_id) is called once the job is committed, before any
    chunk runs (in-process, that is long before this returns); on_chunk(done, total) reports
    progress of in-process execution.
    """
    settings = settings or get_settings()
    rt = runtime.current()
    engine = prepare(rt, settings)
    valid, errors = accept_products(products, rejected, source)
    with session_scope(engine) as s:
        job_id, created = write_job(s, valid, job, settings=settings, idempotency_key=idempotency_key,
                                    rejected=errors, source=source)
        stored = get_job(s, job_id)
        chunk_nos = job_chunks(s, job_id)
    if not created and stored["status"] == "refused":
        reason = (f"{idempotency_key!r} already names a refused submission (job {job_id}); a key keeps its "
                  "first submission: send this one under a new key")
        raise SettingsError([("idempotency_key", reason)])
    submission = Submission(job_id, created, stored["n_items"], errors, stored["settings"])
    if on_created is not None:
        on_created(job_id)
    if not created:
        submission.differs = settings_differ(job, stored["settings"])
        log.info("job %s already submitted under idempotency key %r (%s); nothing dispatched", job_id,
                 idempotency_key, stored["status"])
        if submission.differs:
            log.warning("job %s: the settings given differ from the existing job's (%s); the existing job's "
                        "stand", job_id, ", ".join(submission.differs))
        return submission
    log.info("job %s created: %d products, %d rejected rows, %d chunks on queue %s", job_id, len(valid),
             len({e.row for e in errors}), len(chunk_nos), job.queue)
    start_chunks(rt, settings, job_id, chunk_nos, queue=job.queue, model_version=job.model_version, app=app,
                 on_chunk=on_chunk)
    return submission


def submit_job(
    products: Iterable[Product | Mapping[str, Any]],
    variants: int | None = None,
    *,
    length: str | None = None,
    style: str | None = None,
    opening: str | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    model_version: str | None = None,
    queue: str | None = None,
    campaign: str | None = None,
    idempotency_key: str | None = None,
    settings: Settings | None = None,
) -> str:
    """Submit a catalogue job and return its id; the same idempotency_key returns the same job.

    A setting left None takes its default from copygen.catalogue.JobSettings. Settings are
    validated like a payload's (SettingsError names the field); invalid product rows are logged
    and stored on the job, valid ones go through (CatalogueError if none is).
    """
    settings = settings or get_settings()
    given = {"variants": variants, "length": length, "style": style, "opening": opening,
             "temperature": temperature, "top_p": top_p, "seed": seed, "model_version": model_version,
             "queue": queue, "campaign": campaign}
    job = validate_settings({k: v for k, v in given.items() if v is not None}, settings.max_variants)
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


def why_stalled(rt: Runtime, settings: Settings, progress: Mapping[str, Any], queue: str) -> str | None:
    """Why nothing can make progress on an unfinished job right now, or None if something can.

    In-process, a job runs in the process that submitted it: with no chunk under a live lease,
    nothing runs it (a process killed mid-chunk leaves its chunk running, but its lease lapses).
    With a broker, a job needs a worker consuming its queue (Celery's inspect answers).
    """
    if progress["status"] in FINISHED_JOB:
        return None
    if settings.in_process:
        with session_scope(rt.engine(settings)) as s:
            if leased_chunks(s, progress["job_id"]):
                return None
        return ("no process is running this job: with COPYGEN_BROKER_URL=memory:// a job runs in the process that "
                "submitted it; `copygen reconcile` runs its pending chunks here")
    try:
        consumers = rt.sender(settings).control.inspect(timeout=2.0).active_queues() or {}
    except (BrokerError, OSError) as exc:
        return f"the broker is unreachable ({exc})"
    if any(q.get("name") == queue for queues in consumers.values() for q in queues):
        return None
    return f"no worker consumes the queue '{queue}' (start one: `copygen worker --queues {queue}`)"


def wait_for_job(
    engine: Engine,
    job_id: str,
    poll: float = 1.0,
    *,
    timeout: float | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll SQL until the job is done, partial or failed; return its final job_progress().

    Raises LookupError for an unknown job and TimeoutError after `timeout` seconds. on_progress
    sees every poll's progress and may raise to stop waiting.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        with session_scope(engine) as s:
            progress = job_progress(s, job_id)
        if progress is None:
            raise LookupError(f"no job {job_id}")
        if on_progress is not None:
            on_progress(progress)
        if progress["status"] in FINISHED_JOB:
            return progress
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} still {progress['status']} after {timeout:g} s "
                               f"({progress['chunks_done']} of {progress['chunks_total']} chunks done)")
        time.sleep(poll)


# A payload refused as a whole: nothing in it can be generated, whatever happens later.
REFUSALS = (SettingsError, CatalogueError, ModelVersionError)


def refusal_reasons(exc: ValueError) -> list[dict[str, Any]]:
    """The reasons of a refusal in the shape of rejected rows (source, row, field, reason); row None
    means the payload as a whole."""
    if isinstance(exc, CatalogueError) and exc.errors:  # every product row was rejected
        return [e.to_json() for e in exc.errors]
    if isinstance(exc, SettingsError):
        problems = exc.problems
    elif isinstance(exc, ModelVersionError):
        problems = [("settings.model_version", str(exc).removeprefix("settings.model_version: "))]
    else:
        problems = [("products", str(exc).removeprefix("payload: "))]
    return [{"source": "payload", "row": None, "field": name, "reason": reason} for name, reason in problems]


def refusal_key(payload: Mapping[str, Any], default_key: str) -> str | None:
    """The key a refused payload is recorded under: its own, else default_key; None when the payload
    carries a key that cannot be one (not text, empty or too long): recording it under another key
    would put the refusal where its client does not look."""
    key = payload.get("idempotency_key")
    if key is None:
        return default_key
    if isinstance(key, str) and 0 < len(key) <= MAX_IDEMPOTENCY_KEY_CHARS:
        return key
    return None


def submit_message(args: tuple, payload: dict[str, Any], *, settings: Settings, app: Celery | None,
                   task_id: str) -> Submission:
    """Submit what a copygen.submit_job message carries; record a refusal in SQL, then raise it.

    The payload is the message's keyword arguments; positional ones are a payload sent the wrong
    way (send_task(..., args=[payload])), refused and recorded under task:<task id>.
    """
    default_key = f"task:{task_id}"
    try:
        if args:
            raise SettingsError([("payload", (f"sent as {len(args)} positional argument(s); send it as keyword "
                                              "arguments: send_task('copygen.submit_job', kwargs=payload)"))])
        return submit_payload(payload, settings=settings, app=app, default_key=default_key)
    except REFUSALS as exc:
        reasons = refusal_reasons(exc)
        key = default_key if args else refusal_key(payload, default_key)
        if key is None:
            log.error("copygen.submit_job %s refused, not recorded (its idempotency_key cannot be a key): %s",
                      task_id, exc)
            raise
        with session_scope(runtime.current().store(settings)) as s:
            job_id, created = record_refusal(s, key, reasons)
        if created:
            log.error("copygen.submit_job %s refused, recorded as job %s under idempotency key %r: %s", task_id,
                      job_id, key, exc)
        else:
            log.error("copygen.submit_job %s refused: %s; idempotency key %r already names job %s, which stands",
                      task_id, exc, key, job_id)
        raise
