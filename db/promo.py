"""Promo runs: each firing of a scheduled promo batch is keyed by (schedule, slot).

A double fire of Celery beat, or a rerun of the same slot, finds the slot taken and creates no
second job. Claim the slot, create the job and set_promo_job in one transaction: if submission
fails the claim rolls back with it and the slot can fire again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import PromoRun, utcnow
from db.upsert import dialect_insert

PROMO_RUNS = PromoRun.__table__


def claim_promo_slot(s: Session, schedule: str, slot: str) -> bool:
    """Take the (schedule, slot) firing; True if this call took it, False if it was taken before.

    On PostgreSQL a concurrent claimer waits for the first one's transaction and then gets False.
    """
    stmt = (
        dialect_insert(s, PROMO_RUNS)
        .values(schedule=schedule, slot=slot, job_id=None, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=[PROMO_RUNS.c.schedule, PROMO_RUNS.c.slot])
        .returning(PROMO_RUNS.c.id)
    )
    return s.execute(stmt).first() is not None


def set_promo_job(s: Session, schedule: str, slot: str, job_id: str) -> None:
    """Record the job a claimed firing created."""
    result = s.execute(
        update(PROMO_RUNS)
        .where(PROMO_RUNS.c.schedule == schedule, PROMO_RUNS.c.slot == slot)
        .values(job_id=job_id)
        .returning(PROMO_RUNS.c.id)
    )
    if result.first() is None:
        raise LookupError(f"promo slot {schedule!r} / {slot!r} was never claimed")


def get_promo_run(s: Session, schedule: str, slot: str) -> dict[str, Any] | None:
    """The firing of (schedule, slot) as a dict (schedule, slot, job_id, created_at), or None."""
    row = (
        s.execute(
            select(
                PROMO_RUNS.c.schedule, PROMO_RUNS.c.slot, PROMO_RUNS.c.job_id, PROMO_RUNS.c.created_at
            ).where(PROMO_RUNS.c.schedule == schedule, PROMO_RUNS.c.slot == slot)
        )
        .mappings()
        .one_or_none()
    )
    return dict(row) if row is not None else None
