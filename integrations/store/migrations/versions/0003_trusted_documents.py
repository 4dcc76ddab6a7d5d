"""Trusted documents (persisted operations registered by partner clients) and per-client policies.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 02:39:57.025499
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "client_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(length=100), nullable=False),
        sa.Column("safelist", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("length(client) > 0", name=op.f("ck_client_policy_client_not_empty")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_policy")),
        sa.UniqueConstraint("client", name=op.f("uq_client_policy_client")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "trusted_document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(length=100), nullable=False),
        sa.Column("document_id", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("operation_name", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("length(client) > 0", name=op.f("ck_trusted_document_client_not_empty")),
        sa.CheckConstraint("length(document_id) > 0", name=op.f("ck_trusted_document_document_id_not_empty")),
        sa.CheckConstraint(
            "length(sha256) = 64 AND ltrim(sha256, '0123456789abcdef') = ''",
            name=op.f("ck_trusted_document_sha256_lower_hex"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trusted_document")),
        sa.UniqueConstraint("client", "document_id", name=op.f("uq_trusted_document_client_document_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("trusted_document", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trusted_document_client_sha256"), ["client", "sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("trusted_document", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trusted_document_client_sha256"))

    op.drop_table("trusted_document")
    op.drop_table("client_policy")
