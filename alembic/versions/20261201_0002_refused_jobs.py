"""refused jobs

A copygen.submit_job payload refused as a whole is recorded as a jobs row with status 'refused'
(its reasons in jobs.rejected, no items, no chunks), so a client without a result backend finds
the refusal under its idempotency key. Such a row has no queue: jobs.queue becomes nullable.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 09:00:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the status lists (not imported from db.models, which will move on).
OLD_STATUSES = "status IN ('pending', 'running', 'done', 'partial', 'failed')"
NEW_STATUSES = "status IN ('pending', 'running', 'done', 'partial', 'failed', 'refused')"


def _swap(check: str, queue_nullable: bool) -> None:
    # batch_alter_table: ALTER on PostgreSQL; on SQLite, which cannot alter a constraint, the table
    # is copied (alembic/env.py turns foreign keys off so the copy cascades into nothing).
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # The copy is renamed to jobs while the campaign views still name the dropped original;
        # modern SQLite refuses that rename unless it leaves view definitions alone (they name
        # "jobs", which exists again once the rename is done).
        op.execute("PRAGMA legacy_alter_table=ON")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f("ck_jobs_status"), type_="check")
        batch.create_check_constraint(op.f("ck_jobs_status"), check)
        batch.alter_column("queue", existing_type=sa.String(length=100), nullable=queue_nullable)
    if sqlite:
        op.execute("PRAGMA legacy_alter_table=OFF")


def upgrade() -> None:
    _swap(NEW_STATUSES, queue_nullable=True)


def downgrade() -> None:
    # Refused rows have no place in the older schema; they are records, not work, so they go.
    op.execute("DELETE FROM jobs WHERE status = 'refused'")
    _swap(OLD_STATUSES, queue_nullable=False)
