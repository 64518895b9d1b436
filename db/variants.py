"""Variants: the generated copy, written idempotently and read back per job.

Every variant is keyed by (job_item_id, variant_no) under a unique constraint and written with
INSERT ... ON CONFLICT DO NOTHING, so a redelivered chunk stores nothing twice. On PostgreSQL the
rows travel by COPY through a staging table (db.bulk): ~4x the rows per second of a multi-row
INSERT, so the database keeps up with many workers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.bulk import copy_insert_ignoring_conflicts, is_postgresql, json_text
from db.models import JobItem, Variant, utcnow
from db.upsert import dialect_insert

ITEMS = JobItem.__table__
VARIANTS = Variant.__table__

REQUIRED = ("job_item_id", "variant_no", "text")
DEFAULTS: dict[str, Any] = {
    "rank": None,
    "score": None,
    "flags": [],
    "passed": True,
    "model_version": None,
    "regenerations": 0,
}
COLUMNS = ("job_item_id", "variant_no", "text", "rank", "score", "flags", "passed", "model_version",
           "regenerations", "created_at")


def variant_values(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows completed with defaults; ValueError names the row and field of a malformed one."""
    now = utcnow()
    values = []
    for n, row in enumerate(rows):
        for field in REQUIRED:
            if row.get(field) is None:
                raise ValueError(f"variants: row {n}: field '{field}': missing")
        unknown = set(row) - set(REQUIRED) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"variants: row {n}: field '{min(unknown)}': not a variants column")
        flags = row.get("flags") or []
        if isinstance(flags, str) or not all(isinstance(f, str) for f in flags):
            raise ValueError(f"variants: row {n}: field 'flags': expected a list of strings")
        value = {**DEFAULTS, **row, "flags": list(flags), "created_at": now}
        value["passed"] = bool(value["passed"])
        values.append(value)
    return values


def upsert_variants(s: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert variants, skipping any (job_item_id, variant_no) already stored; return how many
    were inserted.

    Row keys: job_item_id, variant_no, text (required); rank, score, flags (list of reasons),
    passed (default true), model_version, regenerations (default 0).
    """
    values = variant_values(rows)
    if not values:
        return 0
    if is_postgresql(s):
        return copy_insert_ignoring_conflicts(
            s, VARIANTS, COLUMNS,
            ((*(v[c] for c in COLUMNS[:5]), json_text(v["flags"]), *(v[c] for c in COLUMNS[6:])) for v in values),
            conflict=("job_item_id", "variant_no"))
    stmt = (
        dialect_insert(s, VARIANTS)
        .on_conflict_do_nothing(index_elements=[VARIANTS.c.job_item_id, VARIANTS.c.variant_no])
        .returning(VARIANTS.c.id)
    )
    return len(s.execute(stmt, values).all())


def iter_job_variants(s: Session, job_id: str, *, batch: int = 2000) -> Iterator[dict[str, Any]]:
    """The job's variants, streamed in catalogue order and best rank first (for exports of
    millions of rows); same keys as job_variants."""
    stmt = (
        select(
            ITEMS.c.external_id,
            ITEMS.c.item_no,
            ITEMS.c.title,
            VARIANTS.c.job_item_id,
            VARIANTS.c.variant_no,
            VARIANTS.c.rank,
            VARIANTS.c.score,
            VARIANTS.c.flags,
            VARIANTS.c.passed,
            VARIANTS.c.text,
            VARIANTS.c.model_version,
            VARIANTS.c.regenerations,
            VARIANTS.c.created_at,
        )
        .join(ITEMS, ITEMS.c.id == VARIANTS.c.job_item_id)
        .where(ITEMS.c.job_id == job_id)
        .order_by(ITEMS.c.item_no, VARIANTS.c.rank.is_(None), VARIANTS.c.rank, VARIANTS.c.variant_no)
        .execution_options(yield_per=batch)
    )
    for row in s.execute(stmt).mappings():
        yield dict(row)


def job_variants(s: Session, job_id: str) -> list[dict[str, Any]]:
    """All variants of a job, in catalogue order, best rank first. Keys: external_id, item_no,
    title, job_item_id, variant_no, rank, score, flags, passed, text, model_version,
    regenerations, created_at."""
    return list(iter_job_variants(s, job_id))
