"""Partner API keys: only the SHA-256 of each key is stored, found by its public id.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 10:12:41.318904
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=12), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "length(public_id) = 12 AND ltrim(public_id, '0123456789abcdef') = ''",
            name=op.f("ck_api_key_public_id_lower_hex"),
        ),
        sa.CheckConstraint(
            "length(key_hash) = 64 AND ltrim(key_hash, '0123456789abcdef') = ''",
            name=op.f("ck_api_key_key_hash_lower_hex"),
        ),
        sa.CheckConstraint("length(client) > 0", name=op.f("ck_api_key_client_not_empty")),
        sa.CheckConstraint("label IS NULL OR length(label) > 0", name=op.f("ck_api_key_label_not_empty")),
        sa.CheckConstraint("length(scopes) > 0 AND length(scopes) <= 2000", name=op.f("ck_api_key_scopes_length")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("public_id", name=op.f("uq_api_key_public_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_key_client"), ["client"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_key_client"))

    op.drop_table("api_key")
