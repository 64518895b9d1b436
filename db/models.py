"""Tables of the copy store, as typed SQLAlchemy models.

A job is a catalogue submission; its products are job_items, grouped into chunks (the unit of
work a worker claims); each item gets several variants of copy. promo_runs key scheduled promo
firings by (schedule, slot); model_versions records the checkpoints that wrote copy.

The campaign views (VIEW_NAMES) are created by the migration with plain SQL and are not ORM
tables; alembic/env.py keeps them out of autogenerate.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# refused: a submission refused as a whole, recorded under its idempotency key with its reasons
JOB_STATUSES = ("pending", "running", "done", "partial", "failed", "refused")
CHUNK_STATUSES = ("pending", "running", "done", "failed")
VIEW_NAMES = ("copy_job_variants", "copy_best_variants", "copy_latest_variants", "copy_approved_variants")
# A reviewer's decision on a variant; edited carries the new text. A rejection may say why.
DECISIONS = ("approved", "edited", "rejected")
REJECT_REASONS = ("wrong_fact", "tone", "length", "compliance", "other")

# Constraint names are part of the schema: a convention keeps them stable across databases, so a
# later migration can drop or alter a constraint by name on PostgreSQL and SQLite alike.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL (indexable, operators), JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")
# job_items.attributes keeps plain JSON everywhere: JSONB reorders object keys, and the order of a
# product's attributes is part of the prompt the model sees (copygen.prompt.attributes_text).
OrderedJSON = JSON()
# SQLite only auto-numbers an INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database.

    PostgreSQL stores timestamptz; SQLite has no time zones, so values are stored as naive UTC
    and come back with tzinfo=UTC. A naive datetime is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given for a UTC timestamp column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    path: Mapped[str] = mapped_column(Text)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=func.now())


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(_one_of("status", JOB_STATUSES), name="status"),
        Index(None, "status"),
        Index(None, "campaign"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid4, as text
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType)
    model_version: Mapped[str | None] = mapped_column(String(200))
    queue: Mapped[str | None] = mapped_column(String(100))  # None for a refused submission
    campaign: Mapped[str | None] = mapped_column(String(200))
    n_items: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)  # rows refused at submission
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobItem(Base):
    __tablename__ = "job_items"
    __table_args__ = (
        UniqueConstraint("job_id", "external_id"),
        UniqueConstraint("job_id", "item_no"),
        Index(None, "job_id", "chunk_no"),  # a chunk's items, read by claim_chunk
        Index(None, "external_id"),  # campaign tools look products up by id (copy_latest_variants)
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    item_no: Mapped[int] = mapped_column(Integer)  # 0-based position in the submitted catalogue
    chunk_no: Mapped[int] = mapped_column(Integer)
    external_id: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(200), default="")
    attributes: Mapped[dict[str, list[str]]] = mapped_column(OrderedJSON)
    description: Mapped[str] = mapped_column(Text, default="")


class Chunk(Base):
    __tablename__ = "chunks"
    __table_args__ = (
        CheckConstraint(_one_of("status", CHUNK_STATUSES), name="status"),
        Index(None, "status", "lease_until"),  # due_chunks: pending, or running with a lapsed lease
    )

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    chunk_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=func.now())
    n_items: Mapped[int] = mapped_column(Integer)


class Variant(Base):
    __tablename__ = "variants"
    __table_args__ = (
        # The idempotency key of every write: a redelivered chunk stores nothing twice. Its leading
        # column also serves lookups of an item's variants.
        UniqueConstraint("job_item_id", "variant_no"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    job_item_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("job_items.id", ondelete="CASCADE"))
    variant_no: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    rank: Mapped[int | None] = mapped_column(Integer)  # 1 = best of the item's variants
    score: Mapped[float | None] = mapped_column(Float)
    flags: Mapped[list[str]] = mapped_column(JSONType)  # reasons a filter gave; [] when clean
    passed: Mapped[bool] = mapped_column(Boolean)
    model_version: Mapped[str | None] = mapped_column(String(200))
    regenerations: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=func.now())


class PromoRun(Base):
    __tablename__ = "promo_runs"
    __table_args__ = (UniqueConstraint("schedule", "slot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule: Mapped[str] = mapped_column(String(200))
    slot: Mapped[str] = mapped_column(String(200))
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=func.now())


class ReviewDecision(Base):
    """A reviewer's decision on a variant; append-only, the latest (highest id) per variant counts.

    Keyed by the variant's stable identity (job_item_id, variant_no), the key its upsert writes
    under, with no foreign key to variants.id: a variant stored again under the same key keeps
    its decisions.
    """

    __tablename__ = "review_decisions"
    __table_args__ = (
        CheckConstraint(_one_of("decision", DECISIONS), name="decision"),
        CheckConstraint(f"reason IS NULL OR {_one_of('reason', REJECT_REASONS)}", name="reason"),
        # the text to publish exists exactly when the decision is an edit
        CheckConstraint("(decision = 'edited') = (edited_text IS NOT NULL)", name="edited_text"),
        Index(None, "job_item_id", "variant_no", "id"),  # a variant's latest decision
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    job_item_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("job_items.id", ondelete="CASCADE"))
    variant_no: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(16))
    edited_text: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(String(32))
    reviewer: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(300))  # where it came from: a workbook, a task, Python
    # a redelivered task or a workbook imported again records nothing twice
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=func.now())
