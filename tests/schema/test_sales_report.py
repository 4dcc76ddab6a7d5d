"""salesReport on both databases: exact figures across bucket boundaries, validation, authorization, caching, and
a fixed number of SQL statements whatever the data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from integrations.store.models import Customer, Order, OrderLine, OrderStatus, Payment, PaymentStatus, Product
from integrations.store.session import StoreSession
from integrations.store.types import utcnow
from resolvers.report.intervals import Interval, floor, starts
from tests.conftest import ANONYMOUS, GraphQLClient, token_for

REPORT = """query($from: DateTime!, $to: DateTime!, $groupBy: ReportInterval, $currency: String!, $top: Int) {
  salesReport(from: $from, to: $to, groupBy: $groupBy, currency: $currency) {
    from to groupBy currency
    totals { revenue { amount currency } refunds { amount } net { amount } orderCount averageOrderValue { amount } }
    buckets { start revenue { amount } refunds { amount } net { amount } orderCount averageOrderValue { amount } }
    topProducts(first: $top) { product { sku } quantity revenue { amount currency } }
  }
}"""
Q1: dict[str, object] = {"from": "2024-01-01T00:00:00Z", "to": "2024-04-01T00:00:00Z", "currency": "USD"}
"""The first quarter of 2024, a leap year: 91 days, 13 ISO weeks (1 January and 1 April are Mondays), 3 months."""
NO_CACHE = {"Cache-Control": "no-cache"}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass(frozen=True)
class Sale:
    """An order as the test builds it: when, status, currency, lines (sku, quantity, unit price), refunded."""

    at: datetime
    status: OrderStatus
    lines: tuple[tuple[str, int, int], ...]
    refunded: int = 0
    currency: str = "USD"
    payment: bool = True


PAYMENT_STATUS = {
    OrderStatus.PENDING: PaymentStatus.PROCESSING,
    OrderStatus.PAID: PaymentStatus.SUCCEEDED,
    OrderStatus.PAYMENT_FAILED: PaymentStatus.FAILED,
    OrderStatus.CANCELLED: PaymentStatus.REFUNDED,
    OrderStatus.PARTIALLY_REFUNDED: PaymentStatus.PARTIALLY_REFUNDED,
    OrderStatus.REFUNDED: PaymentStatus.REFUNDED,
}
SALES = (
    # counted (USD, captured, inside the quarter)
    Sale(utc("2024-01-31T23:59:59.999999+00:00"), OrderStatus.PAID, (("A", 2, 500),)),  # last instant of January
    Sale(utc("2024-02-01T00:00:00+00:00"), OrderStatus.PAID, (("B", 1, 2501),)),  # first of February, same week
    Sale(utc("2024-02-29T12:00:00+00:00"), OrderStatus.PARTIALLY_REFUNDED, (("A", 6, 500),), refunded=1000),  # leap day
    Sale(utc("2024-03-03T23:59:59+00:00"), OrderStatus.REFUNDED, (("C", 7, 100),), refunded=700),  # Sunday night
    Sale(utc("2024-03-04T00:00:00+00:00"), OrderStatus.PAID, (("C", 1, 101), ("D", 14, 100))),  # Monday: new week
    Sale(utc("2024-04-01T00:30:00+02:00"), OrderStatus.PAID, (("D", 4, 100),), payment=False),  # 31 March in UTC
    # not counted
    Sale(utc("2024-02-15T10:00:00+00:00"), OrderStatus.CANCELLED, (("E", 10, 999),), refunded=9990),
    Sale(utc("2024-02-15T11:00:00+00:00"), OrderStatus.PAYMENT_FAILED, (("E", 5, 999),)),
    Sale(utc("2024-02-15T12:00:00+00:00"), OrderStatus.PENDING, (("E", 4, 999),)),
    Sale(utc("2024-02-29T13:00:00+00:00"), OrderStatus.PAID, (("F", 1, 8000),), currency="EUR"),
    Sale(utc("2023-12-31T23:59:59.999999+00:00"), OrderStatus.PAID, (("A", 1, 500),)),  # before `from`
    Sale(utc("2024-04-01T00:00:00+00:00"), OrderStatus.PAID, (("A", 1, 500),)),  # at `to`: excluded
)
PRODUCTS = {"A": "USD", "B": "USD", "C": "USD", "D": "USD", "E": "USD", "F": "EUR"}


async def insert(store: StoreSession, sales: tuple[Sale, ...] | list[Sale], *, first_key: int = 0) -> None:
    """Write customers, products (once), orders, lines and payments exactly as given."""
    async with store.transaction() as session:
        customer = Customer(email=f"buyer{first_key}@example.com", name="Buyer")
        session.add(customer)
        await session.flush()
        assert customer.id is not None
        products = {row.sku: row.id for row in (await session.scalars(select(Product))).all() if row.id is not None}
        for sku in sorted({line[0] for sale in sales for line in sale.lines} - set(products)):
            product = Product(sku=sku, name=f"Product {sku}", price=100, currency=PRODUCTS.get(sku, "USD"), stock=0)
            session.add(product)
            await session.flush()
            assert product.id is not None
            products[sku] = product.id
        for index, sale in enumerate(sales, start=first_key):
            total = sum(quantity * price for _, quantity, price in sale.lines)
            order = Order(
                number=f"ORD-T{index:08d}",
                customer_id=customer.id,
                status=sale.status,
                total=total,
                currency=sale.currency,
                created_at=sale.at,
            )
            session.add(order)
            await session.flush()
            assert order.id is not None
            for sku, quantity, price in sale.lines:
                session.add(OrderLine(order_id=order.id, product_id=products[sku], quantity=quantity, unit_price=price))
            if sale.payment:
                session.add(
                    Payment(
                        order_id=order.id,
                        provider="local",
                        idempotency_key=f"report-test-{index}",
                        status=PAYMENT_STATUS[sale.status],
                        amount=total,
                        refunded=sale.refunded,
                        currency=sale.currency,
                    )
                )


@pytest.fixture
async def sales(client: GraphQLClient, store: StoreSession) -> GraphQLClient:
    await insert(store, SALES)
    return client


async def report(client: GraphQLClient, **variables: Any) -> dict[str, Any]:
    data = await client.execute(REPORT, {**Q1, **variables})
    result: dict[str, Any] = data["salesReport"]
    return result


def figures(entry: dict[str, Any]) -> tuple[int, int, int, int, int | None]:
    """(revenue, refunds, net, orderCount, averageOrderValue) of a bucket or the totals."""
    average = entry["averageOrderValue"]
    return (
        entry["revenue"]["amount"],
        entry["refunds"]["amount"],
        entry["net"]["amount"],
        entry["orderCount"],
        None if average is None else average["amount"],
    )


def non_empty(result: dict[str, Any]) -> dict[str, tuple[int, int, int, int, int | None]]:
    return {bucket["start"][:10]: figures(bucket) for bucket in result["buckets"] if bucket["orderCount"]}


EMPTY = (0, 0, 0, 0, None)


async def test_by_month_the_last_microsecond_of_january_and_the_leap_day_fall_where_they_belong(
    sales: GraphQLClient,
) -> None:
    result = await report(sales, groupBy="MONTH")
    assert (result["from"], result["to"], result["groupBy"], result["currency"]) == (
        "2024-01-01T00:00:00+00:00",
        "2024-04-01T00:00:00+00:00",
        "MONTH",
        "USD",
    )
    assert [bucket["start"] for bucket in result["buckets"]] == [
        "2024-01-01T00:00:00+00:00",
        "2024-02-01T00:00:00+00:00",
        "2024-03-01T00:00:00+00:00",
    ]
    assert [figures(bucket) for bucket in result["buckets"]] == [
        (1000, 0, 1000, 1, 1000),
        (2501 + 3000, 1000, 4501, 2, 2751),  # 5501 / 2 = 2750.5, rounded half up
        (700 + 1501 + 400, 700, 1901, 3, 867),
    ]
    assert result["totals"]["revenue"] == {"amount": 9102, "currency": "USD"}
    assert figures(result["totals"]) == (9102, 1700, 7402, 6, 1517)


async def test_by_iso_week_a_week_spans_a_month_end_and_sunday_night_is_not_monday(sales: GraphQLClient) -> None:
    result = await report(sales, groupBy="WEEK")
    starts = [bucket["start"][:10] for bucket in result["buckets"]]
    assert len(starts) == 13
    assert starts[0] == "2024-01-01"
    assert starts[-1] == "2024-03-25"
    assert all(datetime.fromisoformat(start).weekday() == 0 for start in starts)  # Mondays
    assert non_empty(result) == {
        "2024-01-29": (1000 + 2501, 0, 3501, 2, 1751),  # 31 January and 1 February share a week
        "2024-02-26": (3000 + 700, 1700, 2000, 2, 1850),  # the leap day and Sunday 3 March
        "2024-03-04": (1501, 0, 1501, 1, 1501),  # Monday 00:00
        "2024-03-25": (400, 0, 400, 1, 400),
    }
    assert figures(result["totals"]) == (9102, 1700, 7402, 6, 1517)
    assert figures(result["buckets"][1]) == EMPTY


async def test_by_day_every_day_has_a_bucket_and_offsets_are_read_as_utc(sales: GraphQLClient) -> None:
    result = await report(sales)  # groupBy defaults to DAY
    assert result["groupBy"] == "DAY"
    assert len(result["buckets"]) == 91
    assert result["buckets"][59]["start"] == "2024-02-29T00:00:00+00:00"
    assert non_empty(result) == {
        "2024-01-31": (1000, 0, 1000, 1, 1000),
        "2024-02-01": (2501, 0, 2501, 1, 2501),
        "2024-02-29": (3000, 1000, 2000, 1, 3000),  # the EUR order of the same day is not counted
        "2024-03-03": (700, 700, 0, 1, 700),
        "2024-03-04": (1501, 0, 1501, 1, 1501),
        "2024-03-31": (400, 0, 400, 1, 400),  # placed at 00:30 on 1 April at +02:00
    }
    assert figures(result["totals"]) == (9102, 1700, 7402, 6, 1517)


async def test_a_period_not_on_bucket_boundaries_counts_only_its_own_orders(sales: GraphQLClient) -> None:
    result = await report(sales, groupBy="WEEK", **{"from": "2024-02-29T12:00:00Z", "to": "2024-03-04T00:00:01Z"})
    assert non_empty(result) == {
        "2024-02-26": (3700, 1700, 2000, 2, 1850),  # the week starts before `from`
        "2024-03-04": (1501, 0, 1501, 1, 1501),
    }
    result = await report(
        sales, groupBy="MONTH", **{"from": "2024-02-29T12:00:00.000001Z", "to": "2024-03-04T00:00:00Z"}
    )
    assert non_empty(result) == {"2024-03-01": (700, 700, 0, 1, 700)}  # the leap-day order is a microsecond early


async def test_other_currencies_are_reported_on_their_own(sales: GraphQLClient) -> None:
    result = await report(sales, currency="eur", groupBy="MONTH")
    assert result["currency"] == "EUR"
    assert figures(result["totals"]) == (8000, 0, 8000, 1, 8000)
    assert result["topProducts"] == [
        {"product": {"sku": "F"}, "quantity": 1, "revenue": {"amount": 8000, "currency": "EUR"}}
    ]
    nothing = await report(sales, currency="JPY", groupBy="MONTH")
    assert figures(nothing["totals"]) == EMPTY
    assert [figures(bucket) for bucket in nothing["buckets"]] == [EMPTY] * 3
    assert nothing["topProducts"] == []


async def test_top_products_rank_by_revenue_of_counted_orders(sales: GraphQLClient) -> None:
    result = await report(sales, groupBy="MONTH")
    assert [(p["product"]["sku"], p["quantity"], p["revenue"]["amount"]) for p in result["topProducts"]] == [
        ("A", 8, 4000),
        ("B", 1, 2501),
        ("D", 18, 1800),
        ("C", 8, 801),
    ]  # E sold only on cancelled, failed and pending orders; their sum is the revenue, 9102
    two = await report(sales, groupBy="MONTH", top=2)
    assert [p["product"]["sku"] for p in two["topProducts"]] == ["A", "B"]
    none = await report(sales, groupBy="MONTH", top=0)
    assert none["topProducts"] == []


@pytest.mark.parametrize(
    ("variables", "field", "code"),
    [
        ({"to": "2024-01-01T00:00:00Z"}, "to", "INVALID"),  # empty period
        ({"from": "2024-04-01T00:00:00Z", "to": "2024-01-01T00:00:00Z"}, "to", "INVALID"),
        ({"to": "2025-01-01T00:00:00.000001Z"}, "to", "OUT_OF_RANGE"),  # 366 days and a microsecond by day
        ({"groupBy": "WEEK", "to": "2026-01-02T00:00:00Z"}, "to", "OUT_OF_RANGE"),  # 732 days by week
        ({"groupBy": "MONTH", "to": "2034-01-01T00:00:00.000001Z"}, "to", "OUT_OF_RANGE"),
        ({"currency": "XYZ"}, "currency", "INVALID_CURRENCY"),
        ({"currency": ""}, "currency", "INVALID_CURRENCY"),
        ({"currency": "US\u0000"}, "currency", "INVALID_CURRENCY"),
        ({"from": "0001-01-01T00:00:00+01:00"}, "from", "OUT_OF_RANGE"),
        ({"to": "9999-12-31T23:59:59-14:00", "groupBy": "MONTH"}, "to", "OUT_OF_RANGE"),
        ({"top": 101}, "first", "OUT_OF_RANGE"),
        ({"top": -1}, "first", "OUT_OF_RANGE"),
    ],
)
async def test_bad_arguments_are_coded_field_errors(
    client: GraphQLClient, variables: dict[str, Any], field: str, code: str
) -> None:
    response = await client.post(REPORT, {**Q1, **variables})
    assert response.status_code == 200
    body = response.json()
    (error,) = body["errors"]
    assert error["extensions"] == {"code": code, "field": field}, error
    assert error["message"]
    if field == "first":
        assert body["data"]["salesReport"]["totals"]["orderCount"] == 0  # only the list is refused
        assert body["data"]["salesReport"]["topProducts"] is None
    else:
        assert body["data"] == {"salesReport": None}


@pytest.mark.parametrize(
    ("variables", "to"),
    [
        ({"to": "2025-01-01T00:00:00Z"}, "2025-01-01T00:00:00+00:00"),  # 366 days by day
        ({"groupBy": "WEEK", "to": "2026-01-01T00:00:00Z"}, "2026-01-01T00:00:00+00:00"),  # 731 days by week
        ({"groupBy": "MONTH", "to": "2034-01-01T00:00:00Z"}, "2034-01-01T00:00:00+00:00"),  # 3653 days by month
        ({"from": "2024-01-01T00:00:00", "to": "2024-01-01T00:00:00.000001"}, "2024-01-01T00:00:00.000001+00:00"),
        (
            {"from": "0001-01-01T00:00:00Z", "to": "0001-01-02T00:00:00Z", "groupBy": "WEEK"},
            "0001-01-02T00:00:00+00:00",
        ),
        ({"from": "9999-12-01T00:00:00Z", "to": "9999-12-31T23:59:59.999999Z", "groupBy": "MONTH"}, None),
    ],
)
async def test_the_longest_and_outermost_periods_are_accepted(
    client: GraphQLClient, variables: dict[str, Any], to: str | None
) -> None:
    result = await report(client, **variables)
    if to is not None:
        assert result["to"] == to
    assert result["buckets"]
    assert figures(result["totals"]) == EMPTY


async def test_malformed_arguments_are_refused_before_anything_runs(client: GraphQLClient) -> None:
    body = (await client.post(REPORT, {**Q1, "from": "2024-02-30T00:00:00Z"})).json()
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = (
        await client.post('{ salesReport(from: "2024-01-01T00:00:00Z", to: "2024-02-01T00:00:00Z") { currency } }')
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"  # currency is required
    body = (await client.post(REPORT, {**Q1, "groupBy": "YEAR"})).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def bearer(client: GraphQLClient, **claims: Any) -> dict[str, str]:
    subject = f"{claims.get('roles')}-{claims.get('scopes')}"
    return {"Authorization": f"Bearer {token_for(client.settings, subject=subject, **claims)}"}


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        (None, False),  # anonymous (development scopes: customers:read orders:read)
        ({"roles": ["customer"], "customer": "Q3VzdG9tZXI6MQ"}, False),
        ({"roles": ["staff"], "scopes": ["orders:read", "customers:read", "payments:write"]}, False),
        ({"roles": ["staff"], "scopes": ["reports:read"]}, True),
        ({"roles": ["admin"]}, True),
    ],
)
async def test_reports_need_reports_read_or_admin(
    sales: GraphQLClient, who: dict[str, Any] | None, allowed: bool
) -> None:
    headers = ANONYMOUS if who is None else bearer(sales, **who)
    sales.sql.reset()
    response = await sales.post(REPORT, {**Q1, "groupBy": "MONTH"}, headers=headers)
    body = response.json()
    if allowed:
        assert "errors" not in body, body
        assert response.headers["cache-control"] == "private, max-age=30"  # every field of REPORT is cacheable
        assert body["data"]["salesReport"]["totals"]["revenue"]["amount"] == 9102
    else:
        assert body["data"] == {"salesReport": None}
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert error["path"] == ["salesReport"]
        assert "reports:read" in error["message"]
        assert sales.sql.count == 0  # refused before any SQL


async def test_a_report_is_a_fixed_number_of_statements_whatever_the_data(
    sales: GraphQLClient, store: StoreSession
) -> None:
    query = """query($from: DateTime!, $to: DateTime!, $currency: String!) {
      salesReport(from: $from, to: $to, currency: $currency) { totals { orderCount } buckets { orderCount } }
    }"""
    sales.sql.reset()
    await report(sales, groupBy="WEEK")
    small_with_products = sales.sql.count
    sales.sql.reset()
    await sales.execute(query, Q1)
    small_without = sales.sql.count
    assert (small_with_products, small_without) == (3, 1)  # buckets; top products; their products (one batch)

    base = utc("2024-01-01T00:00:00+00:00")
    more = [
        Sale(
            base + timedelta(hours=7 * n),
            (OrderStatus.PAID, OrderStatus.PENDING, OrderStatus.REFUNDED)[n % 3],
            tuple((f"P{(n + k) % 40}", 1 + k, 100 + n) for k in range(3)),
            refunded=0,
        )
        for n in range(300)
    ]
    await insert(store, more, first_key=1000)
    sales.sql.reset()
    body = (await sales.post(REPORT, {**Q1, "groupBy": "DAY", "top": 100}, headers=NO_CACHE)).json()
    assert "errors" not in body, body
    assert len(body["data"]["salesReport"]["topProducts"]) == 44  # A-D and 40 new ones
    assert sales.sql.count == small_with_products
    assert all(statement.lstrip().upper().startswith("SELECT") for statement in sales.sql.statements)
    sales.sql.reset()
    await sales.post(query, Q1, headers=NO_CACHE)
    assert sales.sql.count == small_without


PLACE = """mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { order { id status } userErrors { code } } }"""
TODAY = """query($from: DateTime!, $to: DateTime!) {
  salesReport(from: $from, to: $to, currency: "USD") { totals { revenue { amount } refunds { amount } orderCount } }
}"""


async def test_cached_reports_are_private_and_dropped_when_orders_or_refunds_change(client: GraphQLClient) -> None:
    customer = await client.execute(
        'mutation { createCustomer(input: {email: "c@example.com", name: "C"}) { customer { id } } }'
    )
    product = await client.execute(
        'mutation { createProduct(input: {sku: "S", name: "S", price: {amount: 250, currency: "USD"}, stock: 9}) '
        "{ product { id } } }"
    )

    async def place(key: str) -> str:
        value = {
            "customerId": customer["createCustomer"]["customer"]["id"],
            "lines": [{"productId": product["createProduct"]["product"]["id"], "quantity": 2}],
            "paymentMethod": "pm_card_visa",
            "idempotencyKey": key,
        }
        order = (await client.execute(PLACE, {"i": value}))["placeOrder"]["order"]
        assert order["status"] == "PAID"
        return str(order["id"])

    now = utcnow()
    period: dict[str, object] = {
        "from": (now - timedelta(days=1)).isoformat(),
        "to": (now + timedelta(days=1)).isoformat(),
    }

    async def totals(expected_cache: str) -> tuple[int, int, int]:
        response = await client.post(TODAY, period)
        assert response.headers["x-cache"] == expected_cache
        assert response.headers["cache-control"].startswith("private")
        data = response.json()["data"]["salesReport"]["totals"]
        return data["revenue"]["amount"], data["refunds"]["amount"], data["orderCount"]

    first = await place("one")
    assert await totals("MISS") == (500, 0, 1)
    assert await totals("HIT") == (500, 0, 1)

    refund = "mutation($i: RefundOrderInput!) { refundOrder(input: $i) { userErrors { code } } }"
    assert (await client.execute(refund, {"i": {"orderId": first, "amount": 120}}))["refundOrder"]["userErrors"] == []
    assert await totals("MISS") == (500, 120, 1)

    second = await place("two")
    assert await totals("MISS") == (1000, 120, 2)
    assert await totals("HIT") == (1000, 120, 2)

    cancel = "mutation($i: CancelOrderInput!) { cancelOrder(input: $i) { order { status } } }"
    assert (await client.execute(cancel, {"i": {"orderId": second}}))["cancelOrder"]["order"]["status"] == "CANCELLED"
    assert await totals("MISS") == (500, 120, 1)


def test_bucket_floors_agree_with_iso_weeks() -> None:
    day = datetime(2024, 2, 29, tzinfo=UTC).date()
    assert floor(Interval.WEEK, day).isoformat() == "2024-02-26"
    assert floor(Interval.MONTH, day).isoformat() == "2024-02-01"
    for offset in range(400):
        some = day + timedelta(days=offset)
        year, week, _ = some.isocalendar()
        assert floor(Interval.WEEK, some) == datetime.fromisocalendar(year, week, 1).date()
    december = starts(Interval.MONTH, datetime(2024, 11, 30, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
    assert [d.isoformat() for d in december] == ["2024-11-01", "2024-12-01"]
