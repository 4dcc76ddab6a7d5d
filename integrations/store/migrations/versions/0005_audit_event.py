"""The audit log: one row per mutation a principal ran or tried to run (never personal data or secrets).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-09 09:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("mutation", sa.String(length=100), nullable=False),
        sa.Column("operation_name", sa.String(length=200), nullable=True),
        sa.Column("targets", sa.Text(), server_default="", nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("codes", sa.Text(), server_default="", nullable=False),
        sa.CheckConstraint(
            "outcome IN ('OK', 'USER_ERRORS', 'ERROR', 'FORBIDDEN')", name=op.f("ck_audit_event_outcome_known")
        ),
        sa.CheckConstraint("length(mutation) > 0", name=op.f("ck_audit_event_mutation_not_empty")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_actor_id"), ["actor", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_mutation_id"), ["mutation", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_mutation_id"))
        batch_op.drop_index(batch_op.f("ix_audit_event_actor_id"))
        batch_op.drop_index(batch_op.f("ix_audit_event_created_at"))

    op.drop_table("audit_event")
