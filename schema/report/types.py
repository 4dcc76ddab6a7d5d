from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, TypedDict

import strawberry

from resolvers.report import sales
from resolvers.report.intervals import Interval
from schema.cache_control import INHERIT, max_age
from schema.context import Info
from schema.money import Money
from schema.product.types import Product

ReportInterval = strawberry.enum(
    Interval, name="ReportInterval", description="How a report groups orders: by UTC day, ISO week or month."
)

REPORT_MAX_AGE = 30
"""Seconds a report may be served from the response cache (per principal); any order or payment change drops it
sooner, since the report's reads are tagged with the order, payment and order line listings."""


@strawberry.type(
    description="Sales of a group of orders. Revenue counts orders whose payment was captured (status PAID, "
    "PARTIALLY_REFUNDED or REFUNDED) at their total; pending, failed and cancelled orders count nowhere.",
    directives=[INHERIT],
)
class SalesTotals:
    revenue: Money = strawberry.field(description="Sum of the counted orders' totals, before refunds.")
    refunds: Money = strawberry.field(
        description="What has been refunded of the counted orders so far, counted by the order's date (the bucket "
        "the order was placed in), not the refund's: refunding a January order later lowers January's net."
    )
    net: Money = strawberry.field(description="revenue minus refunds.")
    order_count: int = strawberry.field(description="How many orders count.")
    average_order_value: Money | None = strawberry.field(
        description="revenue divided by orderCount, rounded to the nearest minor unit (halves up); null without orders."
    )

    @classmethod
    def from_figures(cls, figures: sales.Figures, currency: str) -> SalesTotals:
        return cls(**_figures(figures, currency))


@strawberry.type(description="When a bucket begins.")
class _BucketStart:  # a base of its own only so that the schema lists `start` first in SalesBucket
    start: datetime = strawberry.field(
        description="When the bucket begins (00:00 UTC of its first day). The first bucket may begin before the "
        "report's `from`, and the last end after its `to`: only orders within the period count."
    )


@strawberry.type(
    description="Sales of the orders placed in one day, ISO week (Monday to Sunday) or month, in UTC.",
    directives=[INHERIT],
)
class SalesBucket(_BucketStart, SalesTotals):
    @classmethod
    def from_bucket(cls, bucket: sales.Bucket, currency: str) -> SalesBucket:
        return cls(start=datetime.combine(bucket.start, time(), UTC), **_figures(bucket.figures, currency))


class _Figures(TypedDict):
    revenue: Money
    refunds: Money
    net: Money
    order_count: int
    average_order_value: Money | None


def _figures(figures: sales.Figures, currency: str) -> _Figures:
    average = figures.average
    return {
        "revenue": Money(amount=figures.revenue, currency=currency),
        "refunds": Money(amount=figures.refunds, currency=currency),
        "net": Money(amount=figures.net, currency=currency),
        "order_count": figures.orders,
        "average_order_value": None if average is None else Money(amount=average, currency=currency),
    }


@strawberry.type(description="How one product sold in a report's period.", directives=[INHERIT])
class ProductSales:
    product_pk: strawberry.Private[int]
    quantity: int = strawberry.field(description="Units sold on the counted orders.")
    revenue: Money = strawberry.field(
        description="Sum of those lines' subtotals, before refunds (refunds are per order, not per product)."
    )

    @classmethod
    def from_row(cls, row: sales.ProductSales, currency: str) -> ProductSales:
        return cls(
            product_pk=row.product_id, quantity=row.quantity, revenue=Money(amount=row.revenue, currency=currency)
        )

    @strawberry.field(description="The product.")
    async def product(self, info: Info) -> Product:
        row = await info.context.loaders.product_by_id.load(self.product_pk)
        assert row is not None, "order_line.product_id is a foreign key"
        return Product.from_row(row)


@strawberry.type(
    description="Sales of one currency over a period, aggregated by the store. Orders count by when they were "
    "placed (UTC): `from` inclusive, `to` exclusive; orders in other currencies are left out, never converted.",
    directives=[max_age(REPORT_MAX_AGE, private=True)],
)
class SalesReport:
    period: strawberry.Private[sales.SalesPeriod]
    start: datetime = strawberry.field(name="from", description="Start of the period, inclusive (UTC).")
    end: datetime = strawberry.field(name="to", description="End of the period, exclusive (UTC).")
    group_by: ReportInterval = strawberry.field(description="The size of the buckets.")  # type: ignore[valid-type]
    currency: str = strawberry.field(description="ISO 4217 code of the orders counted and of every amount.")
    totals: SalesTotals = strawberry.field(description="The whole period.")
    buckets: list[SalesBucket] = strawberry.field(
        description="One per bucket overlapping the period, oldest first, including those without orders (zeros)."
    )

    @classmethod
    def from_summary(cls, period: sales.SalesPeriod, summary: sales.SalesSummary) -> SalesReport:
        return cls(
            period=period,
            start=period.start,
            end=period.end,
            group_by=period.interval,
            currency=period.currency,
            totals=SalesTotals.from_figures(summary.totals, period.currency),
            buckets=[SalesBucket.from_bucket(bucket, period.currency) for bucket in summary.buckets],
        )

    @strawberry.field(
        description="The products with the most revenue in the period, most first (ties: more units, then the "
        "older product); counted orders only. Null, with an error coded OUT_OF_RANGE, when `first` is."
    )
    async def top_products(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description=f"How many (0 to {sales.MAX_TOP_PRODUCTS}).")] = 5,
    ) -> list[ProductSales] | None:
        rows = await sales.top_products(info.context.store, self.period, first)
        return [ProductSales.from_row(row, self.period.currency) for row in rows]
