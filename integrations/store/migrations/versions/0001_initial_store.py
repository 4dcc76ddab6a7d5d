"""Initial store: customer, product, order and order_line with their constraints and indexes.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 01:30:23.306647
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("length(email) > 2", name=op.f("ck_customer_email_not_empty")),
        sa.CheckConstraint("length(name) > 0", name=op.f("ck_customer_name_not_empty")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer")),
        sa.UniqueConstraint("email", name=op.f("uq_customer_email")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "product",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("stock", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("length(currency) = 3", name=op.f("ck_product_currency_iso4217")),
        sa.CheckConstraint("length(name) > 0", name=op.f("ck_product_name_not_empty")),
        sa.CheckConstraint("length(sku) > 0", name=op.f("ck_product_sku_not_empty")),
        sa.CheckConstraint("price >= 0", name=op.f("ck_product_price_not_negative")),
        sa.CheckConstraint("stock >= 0", name=op.f("ck_product_stock_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product")),
        sa.UniqueConstraint("sku", name=op.f("uq_product_sku")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('PENDING', 'PAID', 'PAYMENT_FAILED', 'CANCELLED', 'PARTIALLY_REFUNDED', 'REFUNDED')",
            name=op.f("ck_order_status_known"),
        ),
        sa.CheckConstraint("length(currency) = 3", name=op.f("ck_order_currency_iso4217")),
        sa.CheckConstraint("total >= 0", name=op.f("ck_order_total_not_negative")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_order_customer_id_customer"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order")),
        sa.UniqueConstraint("number", name=op.f("uq_order_number")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_order_created_at"), "order", ["created_at"], unique=False)
    op.create_index(op.f("ix_order_customer_id"), "order", ["customer_id"], unique=False)
    op.create_index(op.f("ix_order_status"), "order", ["status"], unique=False)

    op.create_table(
        "order_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_line_quantity_positive")),
        sa.CheckConstraint("unit_price >= 0", name=op.f("ck_order_line_unit_price_not_negative")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["order.id"], name=op.f("fk_order_line_order_id_order"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_order_line_product_id_product"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_line")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_order_line_order_id"), "order_line", ["order_id"], unique=False)
    op.create_index(op.f("ix_order_line_product_id"), "order_line", ["product_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_order_line_product_id"), table_name="order_line")
    op.drop_index(op.f("ix_order_line_order_id"), table_name="order_line")

    op.drop_table("order_line")
    op.drop_index(op.f("ix_order_status"), table_name="order")
    op.drop_index(op.f("ix_order_customer_id"), table_name="order")
    op.drop_index(op.f("ix_order_created_at"), table_name="order")

    op.drop_table("order")
    op.drop_table("product")
    op.drop_table("customer")
