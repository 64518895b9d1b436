"""create copy store

Tables model_versions, jobs, job_items, chunks, variants, promo_runs, and the read-only views
campaign tools query: copy_job_variants, copy_best_variants, copy_latest_variants
(documented in docs/sql.md).

Revision ID: 0001
Revises:
Create Date: 2026-11-28 15:23:08.394382+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types as this revision creates them (not imported from db.models,
# which will move on while this migration must not).
JSONB = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NOW = sa.text("CURRENT_TIMESTAMP")

# Every variant with its product and job: the base view the other two filter.
COPY_JOB_VARIANTS = """
CREATE VIEW copy_job_variants AS
SELECT j.id AS job_id,
       j.campaign AS campaign,
       i.id AS job_item_id,
       i.item_no AS item_no,
       i.external_id AS external_id,
       i.title AS title,
       i.category AS category,
       v.variant_no AS variant_no,
       v.rank AS rank,
       v.score AS score,
       v.passed AS passed,
       v.flags AS flags,
       v.text AS text,
       v.model_version AS model_version,
       v.created_at AS created_at
FROM variants v
JOIN job_items i ON i.id = v.job_item_id
JOIN jobs j ON j.id = i.job_id
"""

VIEW_COLUMNS = """job_id, campaign, job_item_id, item_no, external_id, title, category, variant_no,
       rank, score, passed, flags, text, model_version, created_at"""

# The copy to use for each job item: its rank-1 variant, if that variant passed every filter.
COPY_BEST_VARIANTS = f"""
CREATE VIEW copy_best_variants AS
SELECT {VIEW_COLUMNS}
FROM copy_job_variants
WHERE rank = 1 AND passed
"""

# Per product (external_id), all variants of the most recently submitted job item that has copy:
# a product resubmitted in a new job keeps showing its old copy until the new copy is written
# (a chunk writes all its variants in one transaction, so the switch is never half-way).
COPY_LATEST_VARIANTS = f"""
CREATE VIEW copy_latest_variants AS
SELECT {VIEW_COLUMNS}
FROM (
    SELECT jv.*, max(jv.job_item_id) OVER (PARTITION BY jv.external_id) AS latest_item_id
    FROM copy_job_variants jv
) latest
WHERE job_item_id = latest_item_id
"""


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("settings", JSONB, nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("queue", sa.String(length=100), nullable=False),
        sa.Column("campaign", sa.String(length=200), nullable=True),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("rejected", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'partial', 'failed')", name=op.f("ck_jobs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_jobs_idempotency_key")),
    )
    op.create_index(op.f("ix_jobs_campaign"), "jobs", ["campaign"], unique=False)
    op.create_index(op.f("ix_jobs_status"), "jobs", ["status"], unique=False)

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("manifest", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("name", name=op.f("uq_model_versions_name")),
    )

    op.create_table(
        "chunks",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("chunk_no", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed')", name=op.f("ck_chunks_status")
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_chunks_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "chunk_no", name=op.f("pk_chunks")),
    )
    op.create_index(op.f("ix_chunks_status_lease_until"), "chunks", ["status", "lease_until"], unique=False)

    op.create_table(
        "job_items",
        sa.Column("id", BIG_ID, sa.Identity(always=False), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("item_no", sa.Integer(), nullable=False),
        sa.Column("chunk_no", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=200), nullable=False),
        # plain JSON, not JSONB: JSONB reorders keys, and attribute order is part of the prompt
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_items_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_items")),
        sa.UniqueConstraint("job_id", "external_id", name=op.f("uq_job_items_job_id_external_id")),
        sa.UniqueConstraint("job_id", "item_no", name=op.f("uq_job_items_job_id_item_no")),
    )
    op.create_index(op.f("ix_job_items_external_id"), "job_items", ["external_id"], unique=False)
    op.create_index(op.f("ix_job_items_job_id_chunk_no"), "job_items", ["job_id", "chunk_no"], unique=False)

    op.create_table(
        "promo_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule", sa.String(length=200), nullable=False),
        sa.Column("slot", sa.String(length=200), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_promo_runs_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_runs")),
        sa.UniqueConstraint("schedule", "slot", name=op.f("uq_promo_runs_schedule_slot")),
    )

    op.create_table(
        "variants",
        sa.Column("id", BIG_ID, sa.Identity(always=False), nullable=False),
        sa.Column("job_item_id", sa.BigInteger(), nullable=False),
        sa.Column("variant_no", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("flags", JSONB, nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("regenerations", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_item_id"],
            ["job_items.id"],
            name=op.f("fk_variants_job_item_id_job_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_variants")),
        sa.UniqueConstraint("job_item_id", "variant_no", name=op.f("uq_variants_job_item_id_variant_no")),
    )

    op.execute(COPY_JOB_VARIANTS)
    op.execute(COPY_BEST_VARIANTS)
    op.execute(COPY_LATEST_VARIANTS)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS copy_latest_variants")
    op.execute("DROP VIEW IF EXISTS copy_best_variants")
    op.execute("DROP VIEW IF EXISTS copy_job_variants")
    op.drop_table("variants")
    op.drop_table("promo_runs")
    op.drop_index(op.f("ix_job_items_job_id_chunk_no"), table_name="job_items")
    op.drop_index(op.f("ix_job_items_external_id"), table_name="job_items")
    op.drop_table("job_items")
    op.drop_index(op.f("ix_chunks_status_lease_until"), table_name="chunks")
    op.drop_table("chunks")
    op.drop_table("model_versions")
    op.drop_index(op.f("ix_jobs_status"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_campaign"), table_name="jobs")
    op.drop_table("jobs")
