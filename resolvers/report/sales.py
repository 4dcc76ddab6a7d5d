"""The sales report: revenue, refunds and orders of one currency over a period, per bucket, and top products.

Every figure is aggregated by the database (``GROUP BY`` the bucket, or the product) over the orders that count:

- **Revenue**: orders whose payment was captured (status PAID, PARTIALLY_REFUNDED or REFUNDED), at their total.
  Pending, failed and cancelled orders count nowhere (a cancelled order's payment, if any, was refunded whole).
- **Refunds**: what has been refunded of those orders so far (`payment.refunded`), in the bucket of the *order's*
  date, not the refund's: the store keeps each payment's refunded total, not when each refund happened.
- **Buckets and periods** go by when the order was placed (`order.created_at`, UTC); `from` is inclusive, `to`
  exclusive. Other currencies are left out, never converted.

A report is two statements whatever the data: one for the buckets (the totals are their sums) and, when asked
for, one for the top products (whose rows the product loader then fetches in one batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import BigInteger, ColumnElement, cast, func
from sqlmodel import col, select

from integrations.errors import ErrorCode, UserInputError
from integrations.store.models import Order, OrderLine, OrderStatus, Payment
from integrations.store.session import StoreSession
from resolvers import validation
from resolvers.report.intervals import Interval, starts, truncate

REVENUE_STATUSES = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED)
MAX_SPAN = {
    Interval.DAY: timedelta(days=366),
    Interval.WEEK: timedelta(days=731),
    Interval.MONTH: timedelta(days=3653),
}
"""The longest period per bucket size: a (leap) year of days, two years of weeks, ten years of months."""
MAX_TOP_PRODUCTS = 100


@dataclass(frozen=True)
class SalesPeriod:
    """A validated report request: [start, end) in UTC, one currency."""

    start: datetime
    end: datetime
    interval: Interval
    currency: str


@dataclass(frozen=True)
class Figures:
    """Sales of a group of orders, amounts in minor units of the report's currency."""

    orders: int = 0
    revenue: int = 0
    refunds: int = 0

    @property
    def net(self) -> int:
        return self.revenue - self.refunds

    @property
    def average(self) -> int | None:
        """Revenue per order rounded to the nearest minor unit (halves up); None without orders."""
        if self.orders == 0:
            return None
        return (2 * self.revenue + self.orders) // (2 * self.orders)

    def __add__(self, other: Figures) -> Figures:
        return Figures(self.orders + other.orders, self.revenue + other.revenue, self.refunds + other.refunds)


@dataclass(frozen=True)
class Bucket:
    start: date
    figures: Figures


@dataclass(frozen=True)
class SalesSummary:
    totals: Figures
    buckets: list[Bucket]


@dataclass(frozen=True)
class ProductSales:
    product_id: int
    quantity: int
    revenue: int


def sales_period(start: datetime, end: datetime, interval: Interval, currency: str) -> SalesPeriod:
    """The period asked for, or the first problem with it as a coded `UserInputError` (fields as in the graph)."""
    start_utc, end_utc = _utc(start, "from"), _utc(end, "to")
    if start_utc >= end_utc:
        raise UserInputError("to", "`to` must be after `from`", code=ErrorCode.INVALID)
    if end_utc - start_utc > MAX_SPAN[interval]:
        days = MAX_SPAN[interval].days
        raise UserInputError(
            "to", f"a report by {interval.lower()} spans at most {days} days", code=ErrorCode.OUT_OF_RANGE
        )
    code = validation.currency("currency", currency)
    return SalesPeriod(start=start_utc, end=end_utc, interval=interval, currency=code)


async def sales_summary(store: StoreSession, period: SalesPeriod) -> SalesSummary:
    """Totals and one row per bucket overlapping the period (oldest first; empty buckets hold zeros)."""
    bucket = truncate(period.interval, col(Order.created_at))
    statement = (
        select(
            bucket,
            func.count(col(Order.id)),
            func.coalesce(func.sum(col(Order.total)), 0),
            func.coalesce(func.sum(func.coalesce(col(Payment.refunded), 0)), 0),
        )
        .select_from(Order)
        .outerjoin(Payment, col(Payment.order_id) == col(Order.id))
        .where(*_counted(period))
        .group_by(bucket)
    )
    found = {
        day: Figures(orders=int(orders), revenue=int(revenue), refunds=int(refunds))
        for day, orders, revenue, refunds in await store.rows(statement)
    }
    totals = sum(found.values(), Figures())
    _fits(totals.revenue, totals.refunds)
    buckets = [Bucket(day, found.get(day, Figures())) for day in starts(period.interval, period.start, period.end)]
    return SalesSummary(totals=totals, buckets=buckets)


async def top_products(store: StoreSession, period: SalesPeriod, first: int) -> list[ProductSales]:
    """The `first` products with the most revenue in the period (then most units, then oldest product)."""
    validation.integer("first", first, minimum=0, maximum=MAX_TOP_PRODUCTS)
    if first == 0:
        return []
    quantity = func.sum(col(OrderLine.quantity))
    revenue = func.sum(cast(col(OrderLine.quantity), BigInteger) * col(OrderLine.unit_price))
    statement = (
        select(col(OrderLine.product_id), quantity, revenue)
        .join(Order, col(Order.id) == col(OrderLine.order_id))
        .where(*_counted(period))
        .group_by(col(OrderLine.product_id))
        .order_by(revenue.desc(), quantity.desc(), col(OrderLine.product_id))
        .limit(first)
    )
    rows = [
        ProductSales(int(product), int(units), int(amount)) for product, units, amount in await store.rows(statement)
    ]
    _fits(*(n for row in rows for n in (row.quantity, row.revenue)))
    return rows


def _counted(period: SalesPeriod) -> list[ColumnElement[bool]]:
    """The orders a report counts (see the module's docstring)."""
    return [
        col(Order.currency) == period.currency,
        col(Order.status).in_([str(status) for status in REVENUE_STATUSES]),
        col(Order.created_at) >= period.start,
        col(Order.created_at) < period.end,
    ]


def _utc(value: datetime, field: str) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first instant Python can hold in UTC
        raise UserInputError(field, f"`{field}` is out of range", code=ErrorCode.OUT_OF_RANGE) from None


def _fits(*amounts: int) -> None:
    """Amounts and counts are GraphQL Ints (32-bit): a sum beyond that is refused rather than reported wrong."""
    if any(amount > validation.MAX_INT32 for amount in amounts):
        raise UserInputError(
            "to",
            f"the period's sales exceed what a report can show ({validation.MAX_INT32} minor units); "
            "ask for a shorter period",
            code=ErrorCode.OUT_OF_RANGE,
        )
