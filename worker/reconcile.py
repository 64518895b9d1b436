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
3. settles jobs whose chunks are all done or failed (done, partial or failed) — also when the
   broker is unreachable.

With the embedded memory:// broker the due chunks run in this process instead.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from itertools import groupby

from celery import Celery
from kombu.exceptions import ChannelError
from kombu.exceptions import OperationalError as BrokerError

from copygen.settings import Settings
from db.chunks import due_chunks, finish_jobs
from db.engine import session_scope
from db.jobs import get_job
from worker import metrics
from worker.dispatch import Chunk, run_here, send_chunks
from worker.runtime import Runtime

log = logging.getLogger(__name__)

MAX_DUE_PER_RUN = 100_000  # messages one run may send; the next run sends the rest


def queue_depth(app: Celery, queue: str) -> int | None:
    """Messages waiting in a broker queue (0 if the queue does not exist), None if unknown."""
    try:
        with app.connection_for_write() as conn:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:  # no such queue: Redis drops an empty list, and a flush drops them all
        return 0
    except (BrokerError, OSError) as exc:  # the broker is unreachable: the next run tries again
        log.warning("reconcile: cannot read the depth of queue %s (%s)", queue, exc)
        return None


def chunks_to_send(app: Celery, due: list[Chunk], lapsed: set[Chunk]) -> list[Chunk]:
    """Of the due chunks: every lapsed one, and the pending ones of queues that are empty."""
    by_queue: dict[str, list[Chunk]] = defaultdict(list)
    for chunk in due:
        by_queue[chunk[2]].append(chunk)
    send: list[Chunk] = []
    for queue, chunks in by_queue.items():
        pending = [c for c in chunks if c not in lapsed]
        send += [c for c in chunks if c in lapsed]
        if pending:
            depth = queue_depth(app, queue)
            if depth == 0:
                send += pending
            else:
                log.info("reconcile: queue %s holds %s message(s); its %d pending chunk(s) are presumed queued",
                         queue, "an unknown number of" if depth is None else depth, len(pending))
    return send


def run_due_here(rt: Runtime, settings: Settings, due: list[Chunk]) -> int:
    """In-process mode: run the due chunks in this process, job by job."""
    engine = rt.engine(settings)
    for job_id, chunks in groupby(due, key=lambda chunk: chunk[0]):
        with session_scope(engine) as s:
            model_version = get_job(s, job_id)["model_version"]
        run_here(rt, settings, job_id, [chunk_no for _, chunk_no, _ in chunks], model_version)
    return len(due)


def reconcile(rt: Runtime, app: Celery, settings: Settings) -> dict[str, int]:
    """One reconciliation pass; returns counts: due, enqueued, finished."""
    engine = rt.engine(settings)
    with session_scope(engine) as s:
        # with a broker, a pending chunk younger than one period may still be on its way to a worker
        min_pending_age = 0 if settings.in_process else settings.reconcile_seconds
        due = due_chunks(s, min_pending_age=min_pending_age, limit=MAX_DUE_PER_RUN)
        lapsed = set(due_chunks(s, pending=False, limit=MAX_DUE_PER_RUN))

    if settings.in_process:
        enqueued = run_due_here(rt, settings, due)
    else:
        enqueued = send_chunks(app, chunks_to_send(app, due, lapsed))
        if (m := metrics.active()) is not None:
            m.reconcile_enqueued.inc(enqueued)

    with session_scope(engine) as s:
        finished = finish_jobs(s)
    counts = {"due": len(due), "enqueued": enqueued, "finished": len(finished)}
    log.info("reconcile: %(due)d chunk(s) due, %(enqueued)d enqueued, %(finished)d job(s) finished", counts)
    return counts
