"""Chunks: the unit of work. Claimed under a lease, retried a bounded number of times, parked.

A chunk is pending (waiting for a worker), running (claimed; its lease says until when the
claimant is trusted), done, or failed (parked after max_attempts tries, with its last error).
Every transition is one conditional UPDATE, so on PostgreSQL two workers can never both claim a
chunk whose lease is live, and attempts are counted in SQL rather than in a worker's memory.
Lease times use the caller's clock in UTC: keep worker clocks in sync (NTP).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from db.jobs import finish_job
from db.models import Chunk, Job, JobItem, utcnow

log = logging.getLogger(__name__)

JOBS = Job.__table__
ITEMS = JobItem.__table__
CHUNKS = Chunk.__table__

MAX_ERROR_CHARS = 8000  # the tail of a long traceback is the part that names the failure
LEASE_LAPSED = "the worker that claimed this chunk never reported back (killed, or past its lease)"


def _chunk(job_id: str, chunk_no: int):
    return and_(CHUNKS.c.job_id == job_id, CHUNKS.c.chunk_no == chunk_no)


def _claimable(now: datetime):
    return or_(
        CHUNKS.c.status == "pending",
        and_(CHUNKS.c.status == "running", CHUNKS.c.lease_until < now),
    )


def claim_chunk(
    s: Session,
    job_id: str,
    chunk_no: int,
    *,
    lease_seconds: float,
    max_attempts: int,
    now: datetime | None = None,
) -> list[dict[str, Any]] | None:
    """Claim a chunk and return its items, or None if there is nothing for this caller to do.

    None when the chunk is done, failed, or running under someone else's live lease; also when it
    has used up max_attempts, in which case it is parked as failed (keeping its last error). A
    claim counts an attempt, marks the chunk running until now + lease_seconds, and the job running.
    Items come in catalogue order as dicts: id (the job_item_id variants refer to), item_no,
    external_id, title, category, attributes, description. Commit soon: the claim holds the
    chunk's row lock until then.
    """
    now = now or utcnow()
    claimed = s.execute(
        update(CHUNKS)
        .where(_chunk(job_id, chunk_no), _claimable(now), CHUNKS.c.attempts < max_attempts)
        .values(
            status="running",
            attempts=CHUNKS.c.attempts + 1,
            lease_until=now + timedelta(seconds=lease_seconds),
            updated_at=now,
        )
        .returning(CHUNKS.c.attempts)
    ).scalar_one_or_none()
    if claimed is None:
        parked = s.execute(
            update(CHUNKS)
            .where(_chunk(job_id, chunk_no), _claimable(now), CHUNKS.c.attempts >= max_attempts)
            .values(
                status="failed",
                lease_until=None,
                updated_at=now,
                last_error=func.coalesce(CHUNKS.c.last_error, LEASE_LAPSED),
            )
            .returning(CHUNKS.c.attempts)
        ).scalar_one_or_none()
        if parked is not None:
            log.warning("job %s chunk %d: parked as failed after %d attempts", job_id, chunk_no, parked)
        return None

    s.execute(update(JOBS).where(JOBS.c.id == job_id, JOBS.c.status == "pending").values(status="running"))
    log.debug("job %s chunk %d: claimed, attempt %d", job_id, chunk_no, claimed)
    rows = s.execute(
        select(
            ITEMS.c.id,
            ITEMS.c.item_no,
            ITEMS.c.external_id,
            ITEMS.c.title,
            ITEMS.c.category,
            ITEMS.c.attributes,
            ITEMS.c.description,
        )
        .where(ITEMS.c.job_id == job_id, ITEMS.c.chunk_no == chunk_no)
        .order_by(ITEMS.c.item_no)
    ).mappings()
    return [dict(row) for row in rows]


def mark_chunk_done(s: Session, job_id: str, chunk_no: int, *, now: datetime | None = None) -> bool:
    """Mark a chunk done (its variants are written); True if this changed its status.

    A chunk parked as failed whose slow worker did finish is marked done too (its copy exists),
    and a job already finished as partial or failed is reopened, for finish_jobs to settle again.
    """
    now = now or utcnow()
    done = {"status": "done", "lease_until": None, "updated_at": now}
    if (
        s.execute(
            update(CHUNKS)
            .where(_chunk(job_id, chunk_no), CHUNKS.c.status.in_(("pending", "running")))
            .values(done)
            .returning(CHUNKS.c.chunk_no)
        ).first()
        is not None
    ):
        return True
    status = s.execute(select(CHUNKS.c.status).where(_chunk(job_id, chunk_no))).scalar_one_or_none()
    if status is None:
        raise LookupError(f"job {job_id} has no chunk {chunk_no}")
    if status != "failed":
        return False  # already done: a duplicate delivery
    # A parked chunk: lock its job first, so a reconciler finishing the job at this moment either
    # counts this chunk as done or has finished before we reopen the job.
    s.execute(select(JOBS.c.id).where(JOBS.c.id == job_id).with_for_update()).first()
    parked = (
        update(CHUNKS)
        .where(_chunk(job_id, chunk_no), CHUNKS.c.status == "failed")
        .values(done)
        .returning(CHUNKS.c.chunk_no)
    )
    if s.execute(parked).first() is None:
        return False
    s.execute(
        update(JOBS)
        .where(JOBS.c.id == job_id, JOBS.c.status.in_(("partial", "failed")))
        .values(status="running", finished_at=None)
    )
    log.info("job %s chunk %d: parked chunk finished after all; job reopened", job_id, chunk_no)
    return True


def record_chunk_error(
    s: Session,
    job_id: str,
    chunk_no: int,
    error: str,
    *,
    max_attempts: int,
    now: datetime | None = None,
) -> bool:
    """Record a failed attempt; return True if the chunk is now parked as failed.

    Below max_attempts the chunk goes back to pending (lease released) for another try. A chunk
    already done stays done (a late error from a duplicate delivery changes nothing).
    """
    now = now or utcnow()
    error = str(error)
    if len(error) > MAX_ERROR_CHARS:
        error = "…" + error[-MAX_ERROR_CHARS:]
    status = s.execute(
        update(CHUNKS)
        .where(_chunk(job_id, chunk_no), CHUNKS.c.status.in_(("pending", "running")))
        .values(
            status=case((CHUNKS.c.attempts >= max_attempts, "failed"), else_="pending"),
            last_error=error,
            lease_until=None,
            updated_at=now,
        )
        .returning(CHUNKS.c.status)
    ).scalar_one_or_none()
    if status is None:
        status = s.execute(select(CHUNKS.c.status).where(_chunk(job_id, chunk_no))).scalar_one_or_none()
        if status is None:
            raise LookupError(f"job {job_id} has no chunk {chunk_no}")
        return status == "failed"
    if status == "failed":
        last_line = error.strip().splitlines()[-1] if error.strip() else ""
        log.warning("job %s chunk %d: parked as failed: %s", job_id, chunk_no, last_line)
    return status == "failed"


def due_chunks(
    s: Session,
    *,
    now: datetime | None = None,
    min_pending_age: float = 0.0,
    limit: int | None = None,
    pending: bool = True,
) -> list[tuple[str, int, str]]:
    """(job_id, chunk_no, queue) of chunks a worker should be given: pending, or running with a
    lapsed lease (a killed worker, a queue that lost its message); oldest jobs first.

    min_pending_age (seconds) skips pending chunks touched more recently than that, so a
    reconciler does not re-enqueue what submission has just enqueued; pending=False lists the
    lapsed leases only.
    """
    now = now or utcnow()
    lapsed = and_(CHUNKS.c.status == "running", CHUNKS.c.lease_until < now)
    waiting = and_(CHUNKS.c.status == "pending", CHUNKS.c.updated_at <= now - timedelta(seconds=min_pending_age))
    stmt = (
        select(CHUNKS.c.job_id, CHUNKS.c.chunk_no, JOBS.c.queue)
        .join(JOBS, JOBS.c.id == CHUNKS.c.job_id)
        .where(or_(waiting, lapsed) if pending else lapsed)
        .order_by(JOBS.c.created_at, CHUNKS.c.job_id, CHUNKS.c.chunk_no)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [(job_id, chunk_no, queue) for job_id, chunk_no, queue in s.execute(stmt)]


def leased_chunks(s: Session, job_id: str, *, now: datetime | None = None) -> int:
    """The job's chunks some process is running now: running, with a lease that has not lapsed."""
    now = now or utcnow()
    return s.execute(
        select(func.count()).select_from(CHUNKS)
        .where(CHUNKS.c.job_id == job_id, CHUNKS.c.status == "running", CHUNKS.c.lease_until >= now)
    ).scalar_one()


def _chunk_counts():
    """Per job in pending/running state: total, done, failed and pending chunk counts."""
    return (
        select(
            JOBS.c.id,
            JOBS.c.status,
            func.count(CHUNKS.c.chunk_no).label("total"),
            func.coalesce(func.sum(case((CHUNKS.c.status == "done", 1), else_=0)), 0).label("done"),
            func.coalesce(func.sum(case((CHUNKS.c.status == "failed", 1), else_=0)), 0).label("failed"),
            func.coalesce(func.sum(case((CHUNKS.c.status == "pending", 1), else_=0)), 0).label("pending"),
        )
        .select_from(JOBS.outerjoin(CHUNKS, CHUNKS.c.job_id == JOBS.c.id))
        .where(JOBS.c.status.in_(("pending", "running")))
        .group_by(JOBS.c.id, JOBS.c.status)
    )


def finish_jobs(s: Session, *, now: datetime | None = None) -> list[str]:
    """Settle unfinished jobs; return the ids of those this call finished.

    Each job whose chunks are all done or failed is settled by finish_job (done, partial or
    failed). A pending job with a chunk that has been claimed becomes running. Safe to run from
    several reconcilers and workers at once: each job is finished by exactly one of them, under
    its row lock (which mark_chunk_done also takes before it reopens a finished job).
    """
    now = now or utcnow()
    finished = []
    for job_id, status, total, done, failed, pending in s.execute(_chunk_counts()).all():
        if done + failed < total:
            if status == "pending" and pending < total:
                s.execute(
                    update(JOBS)
                    .where(JOBS.c.id == job_id, JOBS.c.status == "pending")
                    .values(status="running")
                )
            continue
        if finish_job(s, job_id, now=now) is not None:
            finished.append(job_id)
    return finished
