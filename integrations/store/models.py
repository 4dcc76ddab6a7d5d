"""SQLModel tables. Every rule the data must obey is also a database constraint (NOT NULL, UNIQUE, FK, CHECK).

Primary keys never get reused (AUTOINCREMENT on SQLite, sequences on PostgreSQL), so a global ID of a
deleted object can never point at a new one. Money is stored as an integer amount in minor units plus an
ISO 4217 code. Constraint and index names follow
one naming convention so Alembic migrations are deterministic on every database.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from integrations.store.types import UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Base(SQLModel):
    metadata = metadata


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    CANCELLED = "CANCELLED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"


_STATUSES = ", ".join(f"'{s.value}'" for s in OrderStatus)
EMAIL_MAX = 254
NAME_MAX = 200
SKU_MAX = 64
DESCRIPTION_MAX = 5000


class Customer(Base, table=True):
    __tablename__ = "customer"
    __table_args__ = (
        UniqueConstraint("email"),
        CheckConstraint("length(name) > 0", name="name_not_empty"),
        CheckConstraint("length(email) > 2", name="email_not_empty"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    email: str = Field(sa_column=Column(String(EMAIL_MAX), nullable=False))
    name: str = Field(sa_column=Column(String(NAME_MAX), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Product(Base, table=True):
    __tablename__ = "product"
    __table_args__ = (
        UniqueConstraint("sku"),
        CheckConstraint("length(sku) > 0", name="sku_not_empty"),
        CheckConstraint("length(name) > 0", name="name_not_empty"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("length(currency) = 3", name="currency_iso4217"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    sku: str = Field(sa_column=Column(String(SKU_MAX), nullable=False))
    name: str = Field(sa_column=Column(String(NAME_MAX), nullable=False))
    description: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    price: int = Field(sa_column=Column(Integer, nullable=False))
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    stock: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Order(Base, table=True):
    __tablename__ = "order"
    __table_args__ = (
        UniqueConstraint("number"),
        CheckConstraint(f"status IN ({_STATUSES})", name="status_known"),
        CheckConstraint("total >= 0", name="total_not_negative"),
        CheckConstraint("length(currency) = 3", name="currency_iso4217"),
        Index(None, "created_at"),
        Index(None, "status"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    number: str = Field(sa_column=Column(String(32), nullable=False))
    customer_id: int = Field(
        sa_column=Column(Integer, ForeignKey("customer.id", ondelete="RESTRICT"), nullable=False, index=True)
    )
    status: OrderStatus = Field(sa_column=Column(String(32), nullable=False))
    total: int = Field(sa_column=Column(Integer, nullable=False))
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class OrderLine(Base, table=True):
    __tablename__ = "order_line"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    order_id: int = Field(
        sa_column=Column(Integer, ForeignKey("order.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    product_id: int = Field(
        sa_column=Column(Integer, ForeignKey("product.id", ondelete="RESTRICT"), nullable=False, index=True)
    )
    quantity: int = Field(sa_column=Column(Integer, nullable=False))
    unit_price: int = Field(sa_column=Column(Integer, nullable=False))
