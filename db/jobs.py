"""Jobs: submission (the job, its items and chunks in one go), lookup and progress.

Functions take the caller's Session and never commit: submission writes everything in the
caller's transaction, and chunk tasks are enqueued only after it commits.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.orm import Session

from db.bulk import copy_rows, is_postgresql, json_text
from db.models import Chunk, Job, JobItem, Variant, utcnow
from db.upsert import dialect_insert

log = logging.getLogger(__name__)

JOBS = Job.__table__
ITEMS = JobItem.__table__
CHUNKS = Chunk.__table__
VARIANTS = Variant.__table__

# External ids longer than this do not fit job_items.external_id.
MAX_EXTERNAL_ID = ITEMS.c.external_id.type.length
MAX_CATEGORY = ITEMS.c.category.type.length
INSERT_BATCH = 10_000  # rows per executemany: bounded memory for a catalogue of millions
ITEM_COLUMNS = ("job_id", "item_no", "chunk_no", "external_id", "title", "category", "attributes", "description")


def _row_error(item_no: int, field: str, reason: str) -> ValueError:
    return ValueError(f"products: row {item_no}: field '{field}': {reason}")


def check_products(products: Sequence[Mapping[str, Any]]) -> None:
    """Raise ValueError naming the row and field of the first product the store cannot hold:
    a missing or too long external_id, an id repeated within the job, attributes that are not a
    mapping, a too long category."""
    seen: dict[str, int] = {}
    for item_no, product in enumerate(products):
        external_id = product.get("external_id")
        if external_id is None or str(external_id).strip() == "":
            raise _row_error(item_no, "external_id", "missing")
        external_id = str(external_id)
        if len(external_id) > MAX_EXTERNAL_ID:
            raise _row_error(item_no, "external_id", f"longer than {MAX_EXTERNAL_ID} characters")
        if external_id in seen:
            raise _row_error(item_no, "external_id", f"{external_id!r} repeats row {seen[external_id]}")
        seen[external_id] = item_no
        if not isinstance(product.get("attributes") or {}, Mapping):
            raise _row_error(item_no, "attributes", "expected a mapping of lists")
        if len(str(product.get("category") or "")) > MAX_CATEGORY:
            raise _row_error(item_no, "category", f"longer than {MAX_CATEGORY} characters")


def item_batches(
    job_id: str, products: Sequence[Mapping[str, Any]], chunk_size: int, batch: int = INSERT_BATCH
) -> Iterator[list[dict[str, Any]]]:
    """The job_items rows of checked products, numbered in catalogue order and cut into chunks,
    batch rows at a time."""
    for start in range(0, len(products), batch):
        yield [
            {
                "job_id": job_id,
                "item_no": item_no,
                "chunk_no": item_no // chunk_size,
                "external_id": str(product["external_id"]),
                "title": str(product.get("title") or ""),
                "category": str(product.get("category") or ""),
                "attributes": {
                    str(k): [str(v) for v in vs] for k, vs in (product.get("attributes") or {}).items()
                },
                "description": str(product.get("description") or ""),
            }
            for item_no, product in enumerate(products[start : start + batch], start)
        ]


def create_job(
    s: Session,
    *,
    products: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any],
    model_version: str | None,
    chunk_size: int,
    queue: str,
    idempotency_key: str | None = None,
    campaign: str | None = None,
    rejected: Iterable[Mapping[str, Any]] = (),
) -> tuple[str, bool]:
    """Write a job, its items (in catalogue order) and its chunks; return (job_id, created).

    With an idempotency_key that a job already holds, nothing is written and that job's id comes
    back with created=False, also when two submissions race: the job row is inserted with
    ON CONFLICT DO NOTHING, so the loser waits for the winner's commit and then finds its job.
    Items go in by COPY on PostgreSQL and executemany (INSERT_BATCH rows a statement) on SQLite,
    never as per-row ORM objects: a catalogue may hold millions. A product the store cannot hold
    raises ValueError (naming its row
    and field) before anything is written. A job with no products is created already done.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, not {chunk_size}")
    check_products(products)
    job_id = str(uuid.uuid4())
    n_items = len(products)
    now = utcnow()
    job = {
        "id": job_id,
        "idempotency_key": idempotency_key,
        "status": "pending" if n_items else "done",
        "settings": dict(settings),
        "model_version": model_version,
        "queue": queue,
        "campaign": campaign,
        "n_items": n_items,
        "rejected": [dict(r) for r in rejected],
        "created_at": now,
        "finished_at": None if n_items else now,
    }
    if idempotency_key is None:
        s.execute(insert(JOBS).values(job))
    else:
        stmt = (
            dialect_insert(s, JOBS)
            .values(job)
            .on_conflict_do_nothing(index_elements=[JOBS.c.idempotency_key])
            .returning(JOBS.c.id)
        )
        if s.execute(stmt).scalar_one_or_none() is None:
            existing = s.execute(
                select(JOBS.c.id).where(JOBS.c.idempotency_key == idempotency_key)
            ).scalar_one()
            log.info("idempotency key %r already names job %s; nothing written", idempotency_key, existing)
            return existing, False

    if is_postgresql(s):  # COPY: a 100,000-product catalogue in a few seconds
        copy_rows(s, ITEMS, ITEM_COLUMNS, (
            tuple(json_text(row[c]) if c == "attributes" else row[c] for c in ITEM_COLUMNS)
            for rows in item_batches(job_id, products, chunk_size) for row in rows))
    else:
        for rows in item_batches(job_id, products, chunk_size):
            s.execute(insert(ITEMS), rows)
    n_chunks = (n_items + chunk_size - 1) // chunk_size
    if n_chunks:
        s.execute(
            insert(CHUNKS),
            [
                {
                    "job_id": job_id,
                    "chunk_no": n,
                    "status": "pending",
                    "attempts": 0,
                    "updated_at": now,
                    "n_items": min(chunk_size, n_items - n * chunk_size),
                }
                for n in range(n_chunks)
            ],
        )
    log.info("job %s: %d items in %d chunks of %d, queue %s", job_id, n_items, n_chunks, chunk_size, queue)
    return job_id, True


def get_job(s: Session, job_id: str) -> dict[str, Any] | None:
    """The job row as a dict (id, idempotency_key, status, settings, model_version, queue,
    campaign, n_items, rejected, created_at, finished_at), or None if there is no such job."""
    row = s.execute(select(JOBS).where(JOBS.c.id == job_id)).mappings().one_or_none()
    return dict(row) if row is not None else None


def job_chunks(s: Session, job_id: str) -> list[int]:
    """The chunk numbers of a job, in order."""
    return list(
        s.execute(
            select(CHUNKS.c.chunk_no).where(CHUNKS.c.job_id == job_id).order_by(CHUNKS.c.chunk_no)
        ).scalars()
    )


UNFINISHED_CHUNK = ("pending", "running")
FINISHED_JOB = ("done", "partial", "failed", "refused")  # refused: recorded finished, never ran


def finish_job(s: Session, job_id: str, *, now: datetime | None = None) -> str | None:
    """Settle one job if all its chunks are done or failed; return its new status, else None.

    The outcome is done if no chunk failed, failed if every chunk failed, partial otherwise, with
    finished_at set. None when a chunk is still pending or running, when the job is already
    finished (by another worker or reconciler: each job is finished exactly once), or when there
    is no such job. A worker calls this after storing each chunk, so the common case is cheap: one
    indexed probe for an unfinished chunk, from the highest chunk number down (workers take chunks
    roughly in order, so the last ones are the likeliest to be unfinished). Only a job that looks
    finished is locked (the row lock mark_chunk_done takes before reopening a job) and counted.
    """
    now = now or utcnow()

    def unfinished() -> bool:
        return (
            s.execute(
                select(CHUNKS.c.chunk_no)
                .where(CHUNKS.c.job_id == job_id, CHUNKS.c.status.in_(UNFINISHED_CHUNK))
                .order_by(CHUNKS.c.chunk_no.desc())
                .limit(1)
            ).first()
            is not None
        )

    if unfinished():
        return None
    status = s.execute(select(JOBS.c.status).where(JOBS.c.id == job_id).with_for_update()).scalar_one_or_none()
    if status is None or status in FINISHED_JOB or unfinished():  # counted again under the lock
        return None
    done, failed = s.execute(
        select(
            func.coalesce(func.sum(case((CHUNKS.c.status == "done", 1), else_=0)), 0),
            func.coalesce(func.sum(case((CHUNKS.c.status == "failed", 1), else_=0)), 0),
        ).where(CHUNKS.c.job_id == job_id)
    ).one()
    outcome = "done" if failed == 0 else "failed" if done == 0 else "partial"
    finishing = (
        update(JOBS)
        .where(JOBS.c.id == job_id, JOBS.c.status.in_(("pending", "running")))
        .values(status=outcome, finished_at=now)
        .returning(JOBS.c.id)
    )
    if s.execute(finishing).first() is None:  # SQLite has no row locks; the guard does it there
        return None
    log.info("job %s finished: %s (%d of %d chunks failed)", job_id, outcome, failed, done + failed)
    return outcome


def job_progress(s: Session, job_id: str) -> dict[str, Any] | None:
    """Where a job stands, or None if there is no such job.

    Keys: job_id, status, items, rejected (rows refused at submission), chunks_total, chunks_done,
    chunks_failed, chunks_pending (waiting for a worker), chunks_running (claimed), variants
    (stored), flagged (stored with passed = false: they failed a filter and carry its reasons),
    failures ([{chunk_no, attempts, error}] of the failed chunks), created_at, finished_at.
    """
    job = get_job(s, job_id)
    if job is None:
        return None
    by_status = dict(
        s.execute(
            select(CHUNKS.c.status, func.count()).where(CHUNKS.c.job_id == job_id).group_by(CHUNKS.c.status)
        ).all()
    )
    n_variants, n_flagged = s.execute(
        select(func.count(), func.coalesce(func.sum(case((VARIANTS.c.passed.is_(False), 1), else_=0)), 0))
        .select_from(VARIANTS.join(ITEMS, ITEMS.c.id == VARIANTS.c.job_item_id))
        .where(ITEMS.c.job_id == job_id)
    ).one()
    failures = [
        {"chunk_no": chunk_no, "attempts": attempts, "error": error}
        for chunk_no, attempts, error in s.execute(
            select(CHUNKS.c.chunk_no, CHUNKS.c.attempts, CHUNKS.c.last_error)
            .where(CHUNKS.c.job_id == job_id, CHUNKS.c.status == "failed")
            .order_by(CHUNKS.c.chunk_no)
        )
    ]
    return {
        "job_id": job_id,
        "status": job["status"],
        "items": job["n_items"],
        "rejected": len(job["rejected"]),
        "chunks_total": sum(by_status.values()),
        "chunks_done": by_status.get("done", 0),
        "chunks_failed": by_status.get("failed", 0),
        "chunks_pending": by_status.get("pending", 0),
        "chunks_running": by_status.get("running", 0),
        "variants": n_variants,
        "flagged": int(n_flagged),
        "failures": failures,
        "created_at": job["created_at"],
        "finished_at": job["finished_at"],
    }


def record_refusal(s: Session, idempotency_key: str, reasons: Iterable[Mapping[str, Any]], *,
                   now: datetime | None = None) -> tuple[str, bool]:
    """Record a submission refused as a whole under its idempotency key; (job_id, created).

    The row is a job with status 'refused', no items, no chunks and no queue, its reasons in
    `rejected` (the shape of rejected rows: source, row (None: the payload as a whole), field,
    reason), so a client finds it with the query it uses for accepted jobs. The key keeps its first
    holder, as for accepted jobs: when a job (refused or not) already has it, nothing is written and
    that job's id comes back with created=False.
    """
    now = now or utcnow()
    job_id = str(uuid.uuid4())
    row = {"id": job_id, "idempotency_key": idempotency_key, "status": "refused", "settings": {},
           "model_version": None, "queue": None, "campaign": None, "n_items": 0,
           "rejected": [dict(r) for r in reasons], "created_at": now, "finished_at": now}
    stmt = (dialect_insert(s, JOBS).values(row)
            .on_conflict_do_nothing(index_elements=[JOBS.c.idempotency_key]).returning(JOBS.c.id))
    if s.execute(stmt).scalar_one_or_none() is not None:
        return job_id, True
    existing = s.execute(select(JOBS.c.id).where(JOBS.c.idempotency_key == idempotency_key)).scalar_one()
    return existing, False


def chunk_variants(s: Session, job_id: str, chunk_no: int) -> list[dict[str, Any]]:
    """The stored variants of one chunk: job_item_id, passed, flags, regenerations (for the worker's metrics)."""
    rows = s.execute(
        select(VARIANTS.c.job_item_id, VARIANTS.c.passed, VARIANTS.c.flags, VARIANTS.c.regenerations)
        .select_from(VARIANTS.join(ITEMS, ITEMS.c.id == VARIANTS.c.job_item_id))
        .where(ITEMS.c.job_id == job_id, ITEMS.c.chunk_no == chunk_no)
    ).mappings()
    return [dict(row) for row in rows]


def products_done_since(s: Session, job_id: str, since: datetime) -> int:
    """Products of the job's chunks that were finished (done or failed) at or after `since`."""
    return int(s.execute(
        select(func.coalesce(func.sum(CHUNKS.c.n_items), 0))
        .where(CHUNKS.c.job_id == job_id, CHUNKS.c.status.in_(("done", "failed")), CHUNKS.c.updated_at >= since)
    ).scalar_one())


def products_left(s: Session, job_id: str) -> int:
    """Products of the job's chunks still pending or running."""
    return int(s.execute(
        select(func.coalesce(func.sum(CHUNKS.c.n_items), 0))
        .where(CHUNKS.c.job_id == job_id, CHUNKS.c.status.in_(UNFINISHED_CHUNK))
    ).scalar_one())


def recent_jobs(s: Session, limit: int = 20) -> list[dict[str, Any]]:
    """The latest jobs, newest first: id, status, n_items, campaign, created_at, finished_at,
    variants (stored) and passed (of those, the ones that passed every filter)."""
    jobs = s.execute(
        select(JOBS.c.id, JOBS.c.status, JOBS.c.n_items, JOBS.c.campaign, JOBS.c.created_at, JOBS.c.finished_at)
        .order_by(JOBS.c.created_at.desc(), JOBS.c.id).limit(limit)
    ).mappings().all()
    ids = [job["id"] for job in jobs]
    counts = {
        job_id: (n, int(passed))
        for job_id, n, passed in s.execute(
            select(ITEMS.c.job_id, func.count(), func.coalesce(func.sum(case((VARIANTS.c.passed, 1), else_=0)), 0))
            .select_from(VARIANTS.join(ITEMS, ITEMS.c.id == VARIANTS.c.job_item_id))
            .where(ITEMS.c.job_id.in_(ids))
            .group_by(ITEMS.c.job_id)
        )
    } if ids else {}
    return [{**job, "variants": counts.get(job["id"], (0, 0))[0], "passed": counts.get(job["id"], (0, 0))[1]}
            for job in jobs]


def stuck_jobs(s: Session, created_before: datetime, limit: int = 100) -> list[dict[str, Any]]:
    """Jobs created before `created_before` that are still pending or running, oldest first."""
    rows = s.execute(
        select(JOBS.c.id, JOBS.c.status, JOBS.c.created_at)
        .where(JOBS.c.status.in_(("pending", "running")), JOBS.c.created_at < created_before)
        .order_by(JOBS.c.created_at).limit(limit)
    ).mappings()
    return [dict(row) for row in rows]


PACE_WINDOW_S = 300  # products/s is measured over the last 5 minutes: recent enough to follow a change of pace


def job_pace(s: Session, job_id: str, *, window_s: float = PACE_WINDOW_S, now: datetime | None = None
             ) -> dict[str, Any] | None:
    """How fast a job moves: products_per_second over the last window_s seconds (or since it was
    created, if later), products_left, and eta_seconds (None while nothing has finished in the window;
    0 when nothing is left). None if there is no such job."""
    now = now or utcnow()
    created = s.execute(select(JOBS.c.created_at).where(JOBS.c.id == job_id)).scalar_one_or_none()
    if created is None:
        return None
    since = max(now - timedelta(seconds=window_s), created)
    elapsed = max((now - since).total_seconds(), 1e-3)
    rate = products_done_since(s, job_id, since) / elapsed
    left = products_left(s, job_id)
    eta = 0.0 if left == 0 else (left / rate if rate > 0 else None)
    return {"products_per_second": rate, "products_left": left, "eta_seconds": eta, "pace_window_seconds": elapsed}
