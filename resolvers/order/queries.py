from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select
from sqlmodel import col, select

from integrations.store.models import Order, OrderStatus


@dataclass(frozen=True)
class OrderFilter:
    status: OrderStatus | None = None
    customer_id: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def orders_statement(where: OrderFilter) -> Select[Order]:
    """Orders matching `where`; `created_after` is inclusive and `created_before` exclusive."""
    statement = select(Order)
    if where.status is not None:
        statement = statement.where(col(Order.status) == where.status)
    if where.customer_id is not None:
        statement = statement.where(col(Order.customer_id) == where.customer_id)
    if where.created_after is not None:
        statement = statement.where(col(Order.created_at) >= where.created_after)
    if where.created_before is not None:
        statement = statement.where(col(Order.created_at) < where.created_before)
    return statement
