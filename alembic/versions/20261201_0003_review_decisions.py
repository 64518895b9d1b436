"""review decisions

Table review_decisions (a reviewer's approved / edited / rejected on a variant, append-only) and
the view copy_approved_variants (per product of a job, the copy a reviewer passed: the edited text
where there is one, else the approved variant). On PostgreSQL every role that may read
copy_best_variants (the campaign role of scripts/campaign_role.sql) may read the new view too.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 18:00:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies (not imported from db.models, which will move on while this migration must not).
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NOW = sa.text("CURRENT_TIMESTAMP")
DECISIONS = "decision IN ('approved', 'edited', 'rejected')"
REASONS = "reason IS NULL OR reason IN ('wrong_fact', 'tone', 'length', 'compliance', 'other')"

# A variant's latest decision is its highest id (ids only grow; clocks may not). Of a product's
# variants whose latest decision passes them, an edited one comes first (a reviewer wrote it for
# publishing), then the best ranked. text is what to publish; generated_text what the model wrote.
COPY_APPROVED_VARIANTS = """
CREATE VIEW copy_approved_variants AS
SELECT job_id, campaign, job_item_id, item_no, external_id, title, category, variant_no, rank, score,
       passed, flags, text, model_version, created_at, decision, generated_text, reviewer, decided_at
FROM (
    SELECT jv.job_id AS job_id, jv.campaign AS campaign, jv.job_item_id AS job_item_id,
           jv.item_no AS item_no, jv.external_id AS external_id, jv.title AS title,
           jv.category AS category, jv.variant_no AS variant_no, jv.rank AS rank, jv.score AS score,
           jv.passed AS passed, jv.flags AS flags, COALESCE(d.edited_text, jv.text) AS text,
           jv.model_version AS model_version, jv.created_at AS created_at, d.decision AS decision,
           jv.text AS generated_text, d.reviewer AS reviewer, d.decided_at AS decided_at,
           row_number() OVER (
               PARTITION BY jv.job_item_id
               ORDER BY CASE WHEN d.decision = 'edited' THEN 0 ELSE 1 END,
                        COALESCE(jv.rank, 2147483647), jv.variant_no
           ) AS pick
    FROM copy_job_variants jv
    JOIN review_decisions d ON d.job_item_id = jv.job_item_id AND d.variant_no = jv.variant_no
    WHERE d.id = (SELECT max(l.id) FROM review_decisions l
                  WHERE l.job_item_id = jv.job_item_id AND l.variant_no = jv.variant_no)
      AND d.decision IN ('approved', 'edited')
) approved
WHERE pick = 1
"""

# Whoever may read copy_best_variants (the campaign role) may read the new view: a deployment's
# campaign tools see it after `copygen migrate`, without running scripts/campaign_role.sql again.
GRANT_LIKE_BEST_VARIANTS = """
DO $$
DECLARE grantee_name text;
BEGIN
    FOR grantee_name IN
        SELECT DISTINCT grantee FROM information_schema.role_table_grants
        WHERE table_schema = current_schema() AND table_name = 'copy_best_variants'
          AND privilege_type = 'SELECT' AND grantee <> current_user
    LOOP
        IF grantee_name = 'PUBLIC' THEN
            EXECUTE 'GRANT SELECT ON copy_approved_variants TO PUBLIC';
        ELSE
            EXECUTE format('GRANT SELECT ON copy_approved_variants TO %I', grantee_name);
        END IF;
    END LOOP;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "review_decisions",
        sa.Column("id", BIG_ID, sa.Identity(always=False), nullable=False),
        sa.Column("job_item_id", sa.BigInteger(), nullable=False),
        sa.Column("variant_no", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("edited_text", sa.Text(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint(DECISIONS, name=op.f("ck_review_decisions_decision")),
        sa.CheckConstraint(REASONS, name=op.f("ck_review_decisions_reason")),
        sa.CheckConstraint("(decision = 'edited') = (edited_text IS NOT NULL)",
                           name=op.f("ck_review_decisions_edited_text")),
        sa.ForeignKeyConstraint(["job_item_id"], ["job_items.id"],
                                name=op.f("fk_review_decisions_job_item_id_job_items"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_decisions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_review_decisions_idempotency_key")),
    )
    op.create_index(op.f("ix_review_decisions_job_item_id_variant_no_id"), "review_decisions",
                    ["job_item_id", "variant_no", "id"], unique=False)
    op.execute(COPY_APPROVED_VARIANTS)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(GRANT_LIKE_BEST_VARIANTS)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS copy_approved_variants")
    op.drop_index(op.f("ix_review_decisions_job_item_id_variant_no_id"), table_name="review_decisions")
    op.drop_table("review_decisions")
