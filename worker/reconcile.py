"""The reconciler: SQL is the source of truth, the queue is a hint.

Run periodically by beat (copygen.reconcile every COPYGEN_RECONCILE_SECONDS) and by
`copygen reconcile`. Each run

1. re-enqueues chunks whose lease lapsed (a worker was killed, or lost its database) — always;
2. re-enqueues pending chunks older than one reconcile period, for each queue whose broker list
   is empty (the queue was lost: Redis restarted or flushed, or submission could not reach the
   broker). While a queue still holds messages its pending chunks are presumed queued, so a deep
   backlog is not enqueued a second time every period; once it drains, whatever is still pending
   is sent again. A duplicate message is harmless: claim_chunk hands a chunk to one worker at a
   time and variants are written with ON CONFLICT DO NOTHING;
3. settles jobs whose chunks are all done or failed (done, partial or failed).

With the embedded memory:// broker the due chunks run in this process instead.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import TYPE_CHECKING

from db.chunks import due_chunks, finish_jobs
from db.engine import session_scope

if TYPE_CHECKING:
    from celery import Celery
    from sqlalchemy import Engine

    from copygen.settings import Settings

log = logging.getLogger(__name__)

GENERATE_CHUNK = "copygen.generate_chunk"
MAX_DUE_PER_RUN = 100_000  # messages one run may send; the next run sends the rest
_NO_PENDING = 100 * 365 * 86400.0  # a min_pending_age no pending chunk reaches


def queue_depth(app: Celery, queue: str) -> int | None:
    """Messages waiting in a broker queue (0 if the queue does not exist), None if unknown."""
    from kombu.exceptions import ChannelError
    from kombu.exceptions import OperationalError as BrokerError

    try:
        with app.connection_for_write() as conn:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:  # no such queue: Redis drops an empty list, and a flush drops them all
        return 0
    except (BrokerError, OSError) as exc:  # the broker is unreachable: the next run tries again
        log.warning("reconcile: cannot read the depth of queue %s (%s)", queue, exc)
        return None


def reconcile(engine: Engine, app: Celery, settings: Settings) -> dict[str, int]:
    """One reconciliation pass; returns counts: due, enqueued, finished."""
    from worker.celery_app import uses_memory_broker

    with session_scope(engine) as s:
        due = due_chunks(s, min_pending_age=settings.reconcile_seconds, limit=MAX_DUE_PER_RUN)
        # due_chunks says pending-or-lapsed; with pending ones excluded, the rest are lapsed leases
        lapsed = set(due_chunks(s, min_pending_age=_NO_PENDING, limit=MAX_DUE_PER_RUN))

    if uses_memory_broker(settings):
        enqueued = _run_here(engine, settings, due)
    else:
        by_queue: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
        for chunk in due:
            by_queue[chunk[2]].append(chunk)
        send: list[tuple[str, int, str]] = []
        for queue, chunks in by_queue.items():
            pending = [c for c in chunks if c not in lapsed]
            send += [c for c in chunks if c in lapsed]
            if pending:
                depth = queue_depth(app, queue)
                if depth == 0:
                    send += pending
                else:
                    log.info("reconcile: queue %s holds %s message(s); its %d pending chunk(s) are presumed "
                             "queued", queue, "an unknown number of" if depth is None else depth, len(pending))
        with app.producer_or_acquire() as producer:
            for job_id, chunk_no, queue in send:
                app.send_task(GENERATE_CHUNK, args=(job_id, chunk_no), queue=queue, producer=producer)
        enqueued = len(send)

    with session_scope(engine) as s:
        finished = finish_jobs(s)
    counts = {"due": len(due), "enqueued": enqueued, "finished": len(finished)}
    log.info("reconcile: %(due)d chunk(s) due, %(enqueued)d enqueued, %(finished)d job(s) finished", counts)
    return counts


def _run_here(engine: Engine, settings: Settings, due: list[tuple[str, int, str]]) -> int:
    from worker import runtime
    from worker.pipeline import run_chunk

    if not due:
        return 0
    generator = runtime.generator(settings)
    for job_id, chunk_no, _ in due:
        run_chunk(engine, generator, job_id, chunk_no, settings)
    return len(due)
