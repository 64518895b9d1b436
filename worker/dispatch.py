"""Where a chunk runs: here (the embedded default) or on a worker (a message on the broker).

``execute_chunk`` is the one way a chunk runs, with its limits and retries: the Celery task calls
it, and so does ``run_here`` when the broker is ``memory://``. It runs pipeline.run_chunk under
the soft time limit and turns what can go wrong into an outcome with ``retry_in`` (seconds to
wait before running the chunk again) or an exception:

- a generation error is recorded against the chunk: retried after a short backoff, parked as
  failed once COPYGEN_MAX_ATTEMPTS are used;
- a database outage is retried with exponential backoff (the generated copy is kept), up to
  DB_MAX_RETRIES; after that the exception goes up and the reconciler takes over;
- a job asking for a model version this worker does not serve is handed back (retry_in) without
  an attempt counted, for a worker that serves it, MAX_HANDBACKS times; then it counts as a
  failed attempt ("no worker serving ... took it"), so a job for a model nobody serves ends;
- a model that cannot be loaded is a failed attempt of the chunk, like a generation error.

``start_chunks`` is what submission and promo firing call after their transaction commits: the
chunks run here, or one ``copygen.generate_chunk`` message each is sent (``send_chunks``, also used
by the reconciler).
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from billiard.process import current_process
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import DBAPIError

from copygen.settings import Settings
from db.engine import session_scope
from db.jobs import chunk_variants
from db.model_versions import get_model_version, register_model_version
from trainer.checkpoint import load_manifest
from trainer.generation import Generator
from worker import metrics, selection
from worker.config import GENERATE_CHUNK
from worker.pipeline import ChunkOutcome, fail_unclaimed, is_disconnect, record_failure, run_chunk
from worker.runtime import Runtime

log = logging.getLogger(__name__)

DB_RETRY_BASE_S = 5  # first wait after a database outage; doubles per retry ...
DB_RETRY_MAX_S = 300  # ... up to 5 minutes
DB_MAX_RETRIES = 24  # about 1.5 hours of outage; after that the reconciler takes over
ERROR_RETRY_BASE_S = 2  # first wait before another attempt of a chunk whose generation failed
MISMATCH_RETRY_S = 10  # a chunk for another model waits this long before it is offered again ...
MAX_HANDBACKS = 30  # ... this many times (5 minutes), then the wait counts as a failed attempt

Chunk = tuple[str, int, str]  # (job_id, chunk_no, queue)


def backoff(retries: int, base: float, cap: float = DB_RETRY_MAX_S) -> float:
    """Exponential backoff with full jitter: workers coming back together do not stampede."""
    return random.uniform(base / 2, min(cap, base * 2**retries))


@contextmanager
def soft_time_limit(seconds: float) -> Iterator[None]:
    """Raise SoftTimeLimitExceeded in the chunk after `seconds`, where no pool does it for us.

    The prefork pool enforces Celery's time limits from its parent process; the solo pool (the
    default of `copygen worker`: one model per process) and in-process execution run the chunk
    in the main thread, where nothing would stop a chunk that hangs. There a SIGALRM timer raises
    SoftTimeLimitExceeded inside the chunk, which records it like any failure. In a pool child
    or a thread this does nothing (the prefork parent enforces the limits; a threads pool has
    none: see the README).
    """
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


def use_score_weights(settings: Settings) -> None:
    """Put COPYGEN_SCORE_WEIGHTS (or the default weights) in force; ValueError naming the variable
    and the file when it cannot be used. Called when a worker starts and before each chunk."""
    try:
        selection.use_weights(str(settings.score_weights) if settings.score_weights else None)
    except ValueError as exc:
        raise ValueError(f"COPYGEN_SCORE_WEIGHTS: {exc}") from None


def execute_chunk(rt: Runtime, settings: Settings, load: Callable[[], Generator], job_id: str, chunk_no: int, *,
                  retries: int = 0) -> ChunkOutcome:
    """Run one chunk with its limits; retry_in on the outcome says when to run it again (None: never).

    load() gives the model (loaded once per process by the Runtime); retries is how many times
    this chunk's message was run before. A worker serving metrics counts the run (worker.metrics).
    The score weights (COPYGEN_SCORE_WEIGHTS) are read per chunk, in both modes, so a new weights
    file counts from the next chunk on, without a restart; one that cannot be read then fails the
    chunk's attempt, as a model that will not load does.
    """
    m = metrics.active()
    if m is None:
        return _execute_chunk(rt, settings, load, job_id, chunk_no, retries=retries)
    started = time.monotonic()
    try:
        outcome = _execute_chunk(rt, settings, lambda: m.counting(load()), job_id, chunk_no, retries=retries)
    except Exception:
        m.chunk_ran("error", time.monotonic() - started, list)
        raise

    def stored() -> list[dict]:
        if not outcome.variants:  # a duplicate delivery wrote nothing
            return []
        with session_scope(rt.engine(settings)) as s:
            return chunk_variants(s, job_id, chunk_no)

    m.chunk_ran(outcome.status, time.monotonic() - started, stored)
    return outcome


def _execute_chunk(rt: Runtime, settings: Settings, load: Callable[[], Generator], job_id: str, chunk_no: int, *,
                   retries: int) -> ChunkOutcome:
    try:
        use_score_weights(settings)
        generator = load()
    except Exception as exc:  # noqa: BLE001  (a model that will not load fails the chunk's attempt, visibly)
        outcome = fail_unclaimed(rt.engine(settings), job_id, chunk_no, exc, settings)
    else:
        try:
            with soft_time_limit(settings.task_soft_time_limit):
                outcome = run_chunk(rt, generator, job_id, chunk_no, settings)
        except SoftTimeLimitExceeded as exc:  # raised outside run_chunk's own handler (e.g. while storing)
            outcome = record_failure(rt.engine(settings), job_id, chunk_no, exc, settings)
        except DBAPIError as exc:
            if not is_disconnect(exc) or retries >= DB_MAX_RETRIES:
                raise
            delay = backoff(retries, DB_RETRY_BASE_S)
            log.warning("job %s chunk %s: database unavailable; retry in %.0f s", job_id, chunk_no, delay)
            return ChunkOutcome("retry", error=str(exc.orig or exc), retry_in=delay)
    if outcome.status == "mismatch":
        if retries < MAX_HANDBACKS:
            outcome.retry_in = MISMATCH_RETRY_S
            return outcome
        error = RuntimeError(f"{outcome.error}; no worker serving it took the chunk in {MAX_HANDBACKS} hand-backs")
        outcome = fail_unclaimed(rt.engine(settings), job_id, chunk_no, error, settings)
        retries = 0  # the hand-backs were waits, not failed attempts: back off from the start
    if outcome.status == "retry":  # error recorded in SQL, chunk pending again: try again soon
        outcome.retry_in = backoff(retries, ERROR_RETRY_BASE_S)
    return outcome


def serve_model(rt: Runtime, settings: Settings) -> dict:
    """Check COPYGEN_CHECKPOINT and register it as a model version, so jobs may name it.

    A worker does this when it starts, and in-process submission before it writes a job:
    CheckpointError (one line) when the checkpoint cannot be served.
    """
    path = Path(settings.checkpoint).resolve()
    manifest = load_manifest(path)
    with session_scope(rt.store(settings)) as s:
        return register_model_version(s, manifest["name"], str(path), manifest)


def generator_for(rt: Runtime, settings: Settings, model_version: str | None) -> Generator:
    """In-process execution serves any registered version: the job's, else COPYGEN_CHECKPOINT."""
    if model_version is None:
        return rt.generator(settings)
    with session_scope(rt.engine(settings)) as s:
        registered = get_model_version(s, model_version)
    if registered is None:
        raise LookupError(f"model version {model_version!r} is not registered")
    return rt.generator(settings, registered["path"])


def run_here(rt: Runtime, settings: Settings, job_id: str, chunk_nos: Iterable[int], model_version: str | None,
             *, on_chunk: Callable[[int, int], None] | None = None) -> None:
    """Run a job's chunks in this process, one after another, each as a worker would run it."""
    generator = generator_for(rt, settings, model_version)
    chunk_nos = list(chunk_nos)
    for done, chunk_no in enumerate(chunk_nos, start=1):
        retries = 0
        while (outcome := execute_chunk(rt, settings, lambda: generator, job_id, chunk_no,
                                        retries=retries)).retry_in:
            time.sleep(outcome.retry_in)
            retries += 1
        if on_chunk is not None:
            on_chunk(done, len(chunk_nos))


def send_chunks(app: Celery, chunks: Iterable[Chunk]) -> int:
    """One copygen.generate_chunk(job_id, chunk_no) message per chunk, on its queue; how many were sent.

    A broker that cannot be reached is logged, not raised: the chunks are in SQL, pending, and
    the reconciler sends them once the broker is back.
    """
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for job_id, chunk_no, queue in chunks:
                app.send_task(GENERATE_CHUNK, args=(job_id, chunk_no), queue=queue, producer=producer)
                sent += 1
    except (BrokerError, OSError) as exc:
        log.warning("broker unreachable after %d chunk message(s) (%s); the reconciler will send the rest", sent, exc)
    return sent


def start_chunks(rt: Runtime, settings: Settings, job_id: str, chunk_nos: list[int], *, queue: str,
                 model_version: str | None, app: Celery | None = None,
                 on_chunk: Callable[[int, int], None] | None = None) -> None:
    """After the job's transaction commits: run its chunks here (memory://) or send them to workers."""
    if settings.in_process:
        run_here(rt, settings, job_id, chunk_nos, model_version, on_chunk=on_chunk)
    else:
        send_chunks(app or rt.sender(settings), [(job_id, chunk_no, queue) for chunk_no in chunk_nos])
