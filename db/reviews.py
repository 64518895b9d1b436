"""Review decisions: what a person decided about a variant (approved, edited with new text, rejected
with an optional reason), append-only, and the reads built on them.

A decision names its variant by the variant's stable identity, (job_item_id, variant_no): the key
variants are upserted under, so a redelivered or re-stored chunk never separates a variant from
its decisions. The latest decision of a variant (its highest id) counts; earlier ones stay for
audit. Writes are idempotent twice over: a decision carrying an idempotency key already recorded
(a redelivered task, a workbook imported again) is skipped by the unique constraint, and one that
only repeats the variant's latest decision is not appended.

Clients name variants by (job_id, external_id, variant_no); find_variants turns those into rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, tuple_
from sqlalchemy.orm import Session

from db.models import DECISIONS, REJECT_REASONS, Job, JobItem, ReviewDecision, Variant
from db.upsert import dialect_insert

JOBS = Job.__table__
ITEMS = JobItem.__table__
VARIANTS = Variant.__table__
DECISIONS_T = ReviewDecision.__table__

PASSING = ("approved", "edited")  # decisions that pass a variant for publishing
MAX_REVIEWER_CHARS = 200
MAX_KEY_CHARS = 200
LOOKUP_BATCH = 500  # external ids per query: far below any database's limit on bound parameters

VariantKey = tuple[str, str, int]  # (job_id, external_id, variant_no): how clients name a variant


def decision_problems(d: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What keeps a decision from being recorded, as (field, why); [] when its shape is right.

    Fields: job_id, external_id, variant_no name the variant; decision is one of DECISIONS;
    edited_text is given exactly for 'edited'; reason (one of REJECT_REASONS) only for 'edited' or
    'rejected'; reviewer names who decided. Whether the variant exists is find_variants' business.
    """
    problems = []
    for name in ("job_id", "external_id"):
        if not isinstance(d.get(name), str) or not d[name].strip():
            problems.append((name, "missing"))
    variant_no = d.get("variant_no")
    if isinstance(variant_no, bool) or not isinstance(variant_no, int) or variant_no < 1:
        problems.append(("variant_no", f"expected a whole number from 1, got {variant_no!r}"))
    decision, edited, reason = d.get("decision"), d.get("edited_text"), d.get("reason")
    if decision not in DECISIONS:
        problems.append(("decision", (f"{'missing' if decision in (None, '') else repr(decision)}: "
                                     f"choose one of {', '.join(DECISIONS)}")))
    if decision == "edited" and (not isinstance(edited, str) or not edited.strip()):
        problems.append(("edited_text", "an 'edited' decision needs the new text"))
    elif decision in DECISIONS and decision != "edited" and edited not in (None, ""):
        problems.append(("edited_text", f"only an 'edited' decision carries new text, this one is {decision!r}"))
    if reason not in (None, ""):
        if reason not in REJECT_REASONS:
            problems.append(("reason", f"{reason!r}: choose one of {', '.join(REJECT_REASONS)}"))
        elif decision == "approved":
            problems.append(("reason", "a reason goes with 'rejected' or 'edited', not 'approved'"))
    reviewer = d.get("reviewer")
    if not isinstance(reviewer, str) or not reviewer.strip():
        problems.append(("reviewer", "say who decided"))
    elif len(reviewer) > MAX_REVIEWER_CHARS:
        problems.append(("reviewer", f"longer than {MAX_REVIEWER_CHARS} characters"))
    return problems


def find_variants(s: Session, keys: Iterable[VariantKey]) -> dict[VariantKey, dict[str, Any]]:
    """The stored variants among keys: {key: {job_item_id, variant_no, text, passed, flags,
    attributes, title, category, description, settings}}; a key without a variant is left out."""
    wanted: dict[str, set[str]] = {}
    for job_id, external_id, _ in keys:
        wanted.setdefault(job_id, set()).add(external_id)
    found: dict[VariantKey, dict[str, Any]] = {}
    for job_id, external_ids in wanted.items():
        ids = sorted(external_ids)
        for start in range(0, len(ids), LOOKUP_BATCH):
            stmt = (
                select(ITEMS.c.external_id, ITEMS.c.title, ITEMS.c.category, ITEMS.c.attributes,
                       ITEMS.c.description, JOBS.c.settings, VARIANTS.c.job_item_id, VARIANTS.c.variant_no,
                       VARIANTS.c.text, VARIANTS.c.passed, VARIANTS.c.flags)
                .join(ITEMS, ITEMS.c.id == VARIANTS.c.job_item_id)
                .join(JOBS, JOBS.c.id == ITEMS.c.job_id)
                .where(ITEMS.c.job_id == job_id, ITEMS.c.external_id.in_(ids[start:start + LOOKUP_BATCH]))
            )
            for row in s.execute(stmt).mappings():
                found[(job_id, row["external_id"], row["variant_no"])] = dict(row)
    return {key: found[key] for key in keys if key in found}


def _latest_ids():
    """Per variant, the id of its latest decision."""
    return (select(DECISIONS_T.c.job_item_id, DECISIONS_T.c.variant_no, func.max(DECISIONS_T.c.id).label("id"))
            .group_by(DECISIONS_T.c.job_item_id, DECISIONS_T.c.variant_no).subquery("latest_ids"))


def latest_decisions(s: Session, slots: Iterable[tuple[int, int]]) -> dict[tuple[int, int], dict[str, Any]]:
    """The latest decision of each (job_item_id, variant_no) that has one."""
    slots = list(dict.fromkeys(slots))
    found: dict[tuple[int, int], dict[str, Any]] = {}
    for start in range(0, len(slots), LOOKUP_BATCH):
        batch = slots[start:start + LOOKUP_BATCH]
        newest = (select(func.max(DECISIONS_T.c.id))
                  .where(tuple_(DECISIONS_T.c.job_item_id, DECISIONS_T.c.variant_no).in_(batch))
                  .group_by(DECISIONS_T.c.job_item_id, DECISIONS_T.c.variant_no))
        for row in s.execute(select(DECISIONS_T).where(DECISIONS_T.c.id.in_(newest))).mappings():
            found[(row["job_item_id"], row["variant_no"])] = dict(row)
    return found


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return all((a.get(k) or None) == (b.get(k) or None) for k in ("decision", "edited_text", "reason"))


def record_decisions(s: Session, rows: Sequence[Mapping[str, Any]]) -> list[bool]:
    """Append decisions; for each row, whether it was recorded (False: its idempotency key was
    recorded before, or it only repeats the variant's latest decision).

    Row keys: job_item_id, variant_no, decision, edited_text, reason, reviewer, source,
    idempotency_key (optional). Rows are checked by decision_problems' rules before this.
    """
    latest = latest_decisions(s, [(r["job_item_id"], r["variant_no"]) for r in rows])
    insert = dialect_insert(s, DECISIONS_T)
    stmt = insert.on_conflict_do_nothing(index_elements=[DECISIONS_T.c.idempotency_key]).returning(DECISIONS_T.c.id)
    recorded = []
    for row in rows:
        slot = (row["job_item_id"], row["variant_no"])
        value = {
            "job_item_id": row["job_item_id"], "variant_no": row["variant_no"], "decision": row["decision"],
            "edited_text": row.get("edited_text") or None, "reason": row.get("reason") or None,
            "reviewer": row["reviewer"].strip(), "source": str(row.get("source") or "python")[:300],
            "idempotency_key": row.get("idempotency_key"),
        }
        if slot in latest and _same(latest[slot], value):
            recorded.append(False)
            continue
        done = s.execute(stmt, value).first() is not None
        if done:
            latest[slot] = value
        recorded.append(done)
    return recorded


def decision_counts(s: Session, job_id: str) -> dict[str, Any]:
    """A job's review progress: variants and products, each variant counted by its latest decision
    (or as undecided), rejections by reason, and products with copy to publish."""
    latest = _latest_ids()
    stmt = (
        select(VARIANTS.c.job_item_id, DECISIONS_T.c.decision, DECISIONS_T.c.reason)
        .join(ITEMS, ITEMS.c.id == VARIANTS.c.job_item_id)
        .outerjoin(latest, and_(latest.c.job_item_id == VARIANTS.c.job_item_id,
                                latest.c.variant_no == VARIANTS.c.variant_no))
        .outerjoin(DECISIONS_T, DECISIONS_T.c.id == latest.c.id)
        .where(ITEMS.c.job_id == job_id)
    )
    counts: dict[str, Any] = {"variants": 0, "undecided": 0, **dict.fromkeys(DECISIONS, 0),
                              "reasons": {}, "products": 0, "products_with_copy": 0, "decisions_recorded": 0}
    products, publishable = set(), set()
    for item_id, decision, reason in s.execute(stmt):
        counts["variants"] += 1
        products.add(item_id)
        counts[decision or "undecided"] += 1
        if decision in PASSING:
            publishable.add(item_id)
        if decision == "rejected" and reason:
            counts["reasons"][reason] = counts["reasons"].get(reason, 0) + 1
    counts["products"], counts["products_with_copy"] = len(products), len(publishable)
    counts["decisions_recorded"] = s.execute(
        select(func.count()).select_from(DECISIONS_T).join(ITEMS, ITEMS.c.id == DECISIONS_T.c.job_item_id)
        .where(ITEMS.c.job_id == job_id)).scalar_one()
    return counts


def review_rows(s: Session, job_id: str) -> list[dict[str, Any]]:
    """A job's variants for review, in catalogue order, best rank first: external_id, title,
    category, attributes, description, variant_no, rank, score, passed, flags, text."""
    stmt = (
        select(ITEMS.c.external_id, ITEMS.c.title, ITEMS.c.category, ITEMS.c.attributes, ITEMS.c.description,
               VARIANTS.c.variant_no, VARIANTS.c.rank, VARIANTS.c.score, VARIANTS.c.passed, VARIANTS.c.flags,
               VARIANTS.c.text)
        .join(ITEMS, ITEMS.c.id == VARIANTS.c.job_item_id)
        .where(ITEMS.c.job_id == job_id)
        .order_by(ITEMS.c.item_no, VARIANTS.c.rank.is_(None), VARIANTS.c.rank, VARIANTS.c.variant_no)
    )
    return [dict(row) for row in s.execute(stmt).mappings()]


def decided_variants(s: Session, *, campaign: str | None = None, since: datetime | None = None,
                     until: datetime | None = None) -> list[dict[str, Any]]:
    """Every variant whose latest decision was made in [since, until) (in the campaign, when given),
    with its product, its job's settings and that decision: job_id, campaign, external_id, title,
    category, attributes, description, settings, job_item_id, variant_no, rank, score, passed,
    flags, text, model_version, decision_id, decision, edited_text, reason, reviewer, decided_at.
    In catalogue order, best rank first."""
    latest = _latest_ids()
    stmt = (
        select(JOBS.c.id.label("job_id"), JOBS.c.campaign, JOBS.c.settings, ITEMS.c.external_id, ITEMS.c.title,
               ITEMS.c.category, ITEMS.c.attributes, ITEMS.c.description, VARIANTS.c.job_item_id,
               VARIANTS.c.variant_no, VARIANTS.c.rank, VARIANTS.c.score, VARIANTS.c.passed, VARIANTS.c.flags,
               VARIANTS.c.text, VARIANTS.c.model_version, DECISIONS_T.c.id.label("decision_id"),
               DECISIONS_T.c.decision, DECISIONS_T.c.edited_text, DECISIONS_T.c.reason, DECISIONS_T.c.reviewer,
               DECISIONS_T.c.decided_at)
        .join(ITEMS, ITEMS.c.id == VARIANTS.c.job_item_id)
        .join(JOBS, JOBS.c.id == ITEMS.c.job_id)
        .join(latest, and_(latest.c.job_item_id == VARIANTS.c.job_item_id,
                           latest.c.variant_no == VARIANTS.c.variant_no))
        .join(DECISIONS_T, DECISIONS_T.c.id == latest.c.id)
        .order_by(JOBS.c.created_at, JOBS.c.id, ITEMS.c.item_no, VARIANTS.c.rank, VARIANTS.c.variant_no)
    )
    if campaign is not None:
        stmt = stmt.where(JOBS.c.campaign == campaign)
    if since is not None:
        stmt = stmt.where(DECISIONS_T.c.decided_at >= since)
    if until is not None:
        stmt = stmt.where(DECISIONS_T.c.decided_at < until)
    return [dict(row) for row in s.execute(stmt).mappings()]


def product_variants(s: Session, job_item_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """All stored variants of the given products, best rank first: {job_item_id: [{variant_no,
    rank, text, passed, flags, score}]} (the siblings a variant was ranked among)."""
    ids = sorted(set(job_item_ids))
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for start in range(0, len(ids), LOOKUP_BATCH):
        stmt = (select(VARIANTS.c.job_item_id, VARIANTS.c.variant_no, VARIANTS.c.rank, VARIANTS.c.text,
                       VARIANTS.c.passed, VARIANTS.c.flags, VARIANTS.c.score)
                .where(VARIANTS.c.job_item_id.in_(ids[start:start + LOOKUP_BATCH]))
                .order_by(VARIANTS.c.job_item_id, VARIANTS.c.rank, VARIANTS.c.variant_no))
        for row in s.execute(stmt).mappings():
            found[row["job_item_id"]].append(dict(row))
    return found
