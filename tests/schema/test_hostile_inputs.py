"""Hostile input to every mutation: a clean refusal (a 4xx, or coded `userErrors`) that changes nothing, or
storage exactly as sent, never a 500 and never a database error seen by the client. On both databases.

Each case names what it sends and what must come back:

- `errors`: the mutation answers `userErrors` (field path and code) and every row of every affected table is as
  before;
- `request_error`: the request is refused before it runs (HTTP 4xx, `extensions.code`), nothing changed;
- `returns`: the input is accepted and the object comes back (and is stored) with exactly these values.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from integrations.store.models import metadata
from tests.conftest import GraphQLClient

GRAPHQL_RESPONSE = {"Accept": "application/graphql-response+json"}
"""So that request errors are 4xx (legacy application/json answers them with 200)."""
LEAKS = ("sqlalchemy", "asyncpg", "sqlite3", "psycopg", "[sql:", "traceback", "integrityerror", "dataerror")
TABLES = (
    "customer",
    "product",
    "order",
    "order_line",
    "payment",
    "idempotency_record",
    "email_outbox",
    "local_payment_intent",
    "local_refund",
)
MAX_INT32 = 2**31 - 1

MUTATIONS = {
    "createCustomer": """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) { result: customer { id name email } userErrors { field message code } }
}""",
    "updateCustomer": """
mutation($input: UpdateCustomerInput!) {
  updateCustomer(input: $input) { result: customer { id name email } userErrors { field message code } }
}""",
    "createProduct": """
mutation($input: CreateProductInput!) {
  createProduct(input: $input) {
    result: product { id sku name description stock price { amount currency } } userErrors { field message code }
  }
}""",
    "updateProduct": """
mutation($input: UpdateProductInput!) {
  updateProduct(input: $input) {
    result: product { id sku name description stock price { amount currency } } userErrors { field message code }
  }
}""",
    "placeOrder": """
mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) { result: order { id status total { amount currency } } userErrors { field message code } }
}""",
    "refundOrder": """
mutation($input: RefundOrderInput!) {
  refundOrder(input: $input) { result: order { id status } userErrors { field message code } }
}""",
    "cancelOrder": """
mutation($input: CancelOrderInput!) {
  cancelOrder(input: $input) { result: order { id status } userErrors { field message code } }
}""",
}


READ = """
query($id: ID!) {
  node(id: $id) {
    ... on Customer { id name email }
    ... on Product { id sku name description stock price { amount currency } }
    ... on Order { id status total { amount currency } }
  }
}"""


@dataclass(frozen=True)
class Ref:
    """The global ID of an object the fixture made: customer, apple, gold (priced MAX_INT32) or order (paid)."""

    name: str


@dataclass(frozen=True)
class Filler:
    """A string as long as fits in a request just under the body limit (`char` repeated), plus `suffix`."""

    char: str = "x"
    suffix: str = ""


def full_width(ascii: str) -> str:
    """``ada`` as ``\uff41\uff44\uff41``: the full-width forms of printable ASCII."""
    return "".join(chr(ord(ch) + 0xFEE0) for ch in ascii)


def gid(type_name: str, pk: object) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


CUSTOMER, APPLE, GOLD, ORDER = Ref("customer"), Ref("apple"), Ref("gold"), Ref("order")
SQL = "'; DROP TABLE customer; --"
SQL_ORDER = "1'); DELETE FROM \"order\" WHERE ('1'='1"
HTML = "<script>alert(document.cookie)</script>"
RLO = "\u202e"
ZWJ_FAMILY = "\U0001f469\u200d\U0001f469\u200d\U0001f467"
COMBINING = "Zoe\u0308 Cafe\u0301"  # NFC: "Zoë Café"
ZALGO = "Z" + "\u0336\u0334\u0335" * 60  # 181 code points: combining marks pile up, one line
NESTED = 1_500
"""Nesting depth for deeply nested input (deeper than orjson's 1,024 and graphql-core's parser limit)."""


def nested_object(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


def nested_list(depth: int) -> Any:
    value: Any = [{"productId": "x", "quantity": 1}]
    for _ in range(depth):
        value = [value]
    return value


_serial = itertools.count()
"""Makes every case's unique values (email, SKU, idempotency key) distinct: cases of a mutation share a store."""


def customer(**fields: Any) -> dict[str, Any]:
    return {"email": f"new{next(_serial)}@example.com", "name": "New Customer", **fields}


def product(**fields: Any) -> dict[str, Any]:
    return {"sku": f"NEW-{next(_serial)}", "name": "New product", "price": {"amount": 100, "currency": "USD"}, **fields}


def order(**fields: Any) -> dict[str, Any]:
    return {
        "customerId": CUSTOMER,
        "lines": [{"productId": APPLE, "quantity": 1}],
        "paymentMethod": "pm_card_visa",
        "idempotencyKey": f"hostile-{next(_serial)}",
        **fields,
    }


@dataclass(frozen=True)
class Case:
    id: str
    mutation: str
    input: Any
    errors: tuple[tuple[str | None, str], ...] | None = None
    request_error: str | None = None
    returns: dict[str, Any] | None = None


def refused(id: str, mutation: str, input: Any, *errors: tuple[str | None, str]) -> Case:
    return Case(id, mutation, input, errors=errors)


def bad_request(id: str, mutation: str, input: Any, code: str = "BAD_USER_INPUT") -> Case:
    return Case(id, mutation, input, request_error=code)


def accepted(id: str, mutation: str, input: Any, **returns: Any) -> Case:
    return Case(id, mutation, input, returns=returns)


CASES = [
    # createCustomer: text, email and types
    refused("name-nul", "createCustomer", customer(name="Ada\x00Lovelace"), ("name", "INVALID")),
    refused("name-control", "createCustomer", customer(name="Ada\x1b[31mLovelace"), ("name", "INVALID")),
    refused("name-newline", "createCustomer", customer(name="Ada\nBcc: all@example.com"), ("name", "INVALID")),
    refused("name-line-separator", "createCustomer", customer(name="Ada\u2028Lovelace"), ("name", "INVALID")),
    refused("name-rtl-override", "createCustomer", customer(name=f"Ada {RLO}ecalevoL"), ("name", "INVALID")),
    refused("name-isolate", "createCustomer", customer(name="Ada \u2067x\u2069"), ("name", "INVALID")),
    refused("name-only-zero-width", "createCustomer", customer(name="\u200b\u200d\ufeff \u2060"), ("name", "REQUIRED")),
    refused("name-only-format-chars", "createCustomer", customer(name="\u00ad\u200e"), ("name", "REQUIRED")),
    refused("name-201", "createCustomer", customer(name="x" * 201), ("name", "TOO_LONG")),
    refused("name-201-emoji", "createCustomer", customer(name="\U0001f600" * 201), ("name", "TOO_LONG")),
    refused("name-zalgo-too-long", "createCustomer", customer(name=ZALGO + "\u0336" * 20), ("name", "TOO_LONG")),
    refused("name-under-body-limit", "createCustomer", customer(name=Filler()), ("name", "TOO_LONG")),
    refused("name-nul-under-body-limit", "createCustomer", customer(name=Filler("\x00")), ("name", "TOO_LONG")),
    refused(
        "email-under-body-limit", "createCustomer", customer(email=Filler(suffix="@example.com")), ("email", "TOO_LONG")
    ),
    refused("email-nul", "createCustomer", customer(email="ada\x00@example.com"), ("email", "INVALID_EMAIL")),
    refused("email-sql", "createCustomer", customer(email=f"{SQL}@example.com"), ("email", "INVALID_EMAIL")),
    refused("email-html", "createCustomer", customer(email=f"{HTML}@example.com"), ("email", "INVALID_EMAIL")),
    refused("email-rtl", "createCustomer", customer(email=f"ada{RLO}@example.com"), ("email", "INVALID_EMAIL")),
    refused("email-zwj", "createCustomer", customer(email="ad\u200da@example.com"), ("email", "INVALID_EMAIL")),
    refused(
        "email-full-width-local",
        "createCustomer",
        customer(email=full_width("ada") + "@example.com"),
        ("email", "INVALID_EMAIL"),
    ),
    refused(
        "email-full-width-at",
        "createCustomer",
        customer(email="ada" + full_width("@") + "example.com"),
        ("email", "INVALID_EMAIL"),
    ),
    refused("email-no-domain-dot", "createCustomer", customer(email="ada@localhost"), ("email", "INVALID_EMAIL")),
    refused("email-ip-literal", "createCustomer", customer(email="ada@[127.0.0.1]"), ("email", "INVALID_EMAIL")),
    refused("email-empty", "createCustomer", customer(email="   "), ("email", "REQUIRED")),
    refused("email-255", "createCustomer", customer(email="a" * 60 + "@" + "b" * 190 + ".com"), ("email", "TOO_LONG")),
    refused(
        "every-field-at-once",
        "createCustomer",
        {"email": "x", "name": "\x00"},
        ("email", "INVALID_EMAIL"),
        ("name", "INVALID"),
    ),
    refused("duplicate-email-other-case", "createCustomer", customer(email="ADA@Example.com"), ("email", "DUPLICATE")),
    bad_request("email-int", "createCustomer", customer(email=5)),
    bad_request("name-list", "createCustomer", customer(name=["a", "b"])),
    bad_request("name-object", "createCustomer", customer(name={"$ne": None})),
    bad_request("name-null", "createCustomer", customer(name=None)),
    bad_request("unknown-field", "createCustomer", customer(admin=True)),
    bad_request("nested-object", "createCustomer", customer(name=nested_object(200))),
    bad_request("input-is-a-list", "createCustomer", [customer()]),
    accepted("name-sql", "createCustomer", customer(name=SQL), name=SQL),
    accepted("name-html", "createCustomer", customer(name=HTML), name=HTML),
    accepted(
        "name-zwj-emoji", "createCustomer", customer(name=f"The {ZWJ_FAMILY} family"), name=f"The {ZWJ_FAMILY} family"
    ),
    accepted("name-combining-nfc", "createCustomer", customer(name=COMBINING), name="Zoë Café"),
    accepted("name-zalgo", "createCustomer", customer(name=ZALGO), name=ZALGO),
    accepted("name-full-width", "createCustomer", customer(name=full_width("Ada")), name=full_width("Ada")),
    accepted("name-rtl-script", "createCustomer", customer(name="עדה לאבלייס"), name="עדה לאבלייס"),
    accepted("name-trimmed", "createCustomer", customer(name="\ufeff\u200b  Ada \u200b"), name="Ada"),
    accepted("name-200-emoji", "createCustomer", customer(name="\U0001f600" * 200), name="\U0001f600" * 200),
    accepted("email-idn", "createCustomer", customer(email="用户@例子.广告"), email="用户@例子.广告"),
    accepted(
        "email-full-width-domain",
        "createCustomer",
        customer(email="new@" + full_width("example") + ".com"),
        email="new@example.com",
    ),
    # updateCustomer: IDs and the same text rules
    refused("id-int32-overflow", "updateCustomer", {"id": gid("Customer", 2**31), "name": "X"}, ("id", "INVALID_ID")),
    refused("id-int64-overflow", "updateCustomer", {"id": gid("Customer", 2**63), "name": "X"}, ("id", "INVALID_ID")),
    refused("id-negative", "updateCustomer", {"id": gid("Customer", -1), "name": "X"}, ("id", "INVALID_ID")),
    refused("id-zero", "updateCustomer", {"id": gid("Customer", 0), "name": "X"}, ("id", "INVALID_ID")),
    refused("id-sql", "updateCustomer", {"id": gid("Customer", "1 OR 1=1"), "name": "X"}, ("id", "INVALID_ID")),
    refused("id-raw-sql", "updateCustomer", {"id": SQL, "name": "X"}, ("id", "INVALID_ID")),
    refused("id-nul", "updateCustomer", {"id": gid("Customer", "1\x00"), "name": "X"}, ("id", "INVALID_ID")),
    refused(
        "id-unicode-digits", "updateCustomer", {"id": gid("Customer", "\u0661"), "name": "X"}, ("id", "INVALID_ID")
    ),
    refused("id-under-body-limit", "updateCustomer", {"id": Filler("Q"), "name": "X"}, ("id", "INVALID_ID")),
    refused("id-wrong-type", "updateCustomer", {"id": APPLE, "name": "X"}, ("id", "INVALID_ID")),
    refused("id-missing-row", "updateCustomer", {"id": gid("Customer", MAX_INT32), "name": "X"}, ("id", "NOT_FOUND")),
    refused("update-name-nul", "updateCustomer", {"id": CUSTOMER, "name": "\x00"}, ("name", "INVALID")),
    refused("update-email-html", "updateCustomer", {"id": CUSTOMER, "email": HTML}, ("email", "INVALID_EMAIL")),
    bad_request("id-float", "updateCustomer", {"id": 1.5, "name": "X"}),
    accepted("update-name-sql", "updateCustomer", {"id": CUSTOMER, "name": SQL}, name=SQL, email="ada@example.com"),
    # createProduct: numbers, currencies, multi-line text
    refused(
        "price-negative",
        "createProduct",
        product(price={"amount": -1, "currency": "USD"}),
        ("price.amount", "OUT_OF_RANGE"),
    ),
    refused("stock-negative", "createProduct", product(stock=-1), ("stock", "OUT_OF_RANGE")),
    refused("stock-int32-max", "createProduct", product(stock=MAX_INT32), ("stock", "OUT_OF_RANGE")),
    refused(
        "currency-unknown",
        "createProduct",
        product(price={"amount": 1, "currency": "XXX"}),
        ("price.currency", "INVALID_CURRENCY"),
    ),
    refused(
        "currency-short",
        "createProduct",
        product(price={"amount": 1, "currency": "US"}),
        ("price.currency", "INVALID_CURRENCY"),
    ),
    refused(
        "currency-long",
        "createProduct",
        product(price={"amount": 1, "currency": "USDD"}),
        ("price.currency", "INVALID_CURRENCY"),
    ),
    refused(
        "currency-full-width",
        "createProduct",
        product(price={"amount": 1, "currency": full_width("USD")}),
        ("price.currency", "INVALID_CURRENCY"),
    ),
    refused(
        "currency-nul",
        "createProduct",
        product(price={"amount": 1, "currency": "US\x00"}),
        ("price.currency", "INVALID_CURRENCY"),
    ),
    refused(
        "currency-sql",
        "createProduct",
        product(price={"amount": 1, "currency": SQL}),
        ("price.currency", "INVALID_CURRENCY"),
    ),
    refused("sku-65", "createProduct", product(sku="S" * 65), ("sku", "TOO_LONG")),
    refused("sku-tab", "createProduct", product(sku="NEW\t1"), ("sku", "INVALID")),
    refused("sku-rtl", "createProduct", product(sku=f"NEW{RLO}1"), ("sku", "INVALID")),
    refused("sku-duplicate", "createProduct", product(sku="APPLE"), ("sku", "DUPLICATE")),
    refused("description-nul", "createProduct", product(description="a\x00b"), ("description", "INVALID")),
    refused(
        "description-escape", "createProduct", product(description="a\x1b]0;owned\x07"), ("description", "INVALID")
    ),
    refused("description-5001", "createProduct", product(description="d" * 5001), ("description", "TOO_LONG")),
    refused(
        "description-under-body-limit", "createProduct", product(description=Filler()), ("description", "TOO_LONG")
    ),
    refused(
        "everything-wrong",
        "createProduct",
        {"sku": "", "name": "\x00", "price": {"amount": -5, "currency": "???"}, "stock": -1, "description": RLO},
        ("sku", "REQUIRED"),
        ("name", "INVALID"),
        ("description", "INVALID"),
        ("price.amount", "OUT_OF_RANGE"),
        ("price.currency", "INVALID_CURRENCY"),
        ("stock", "OUT_OF_RANGE"),
    ),
    bad_request("price-int32-overflow", "createProduct", product(price={"amount": 2**31, "currency": "USD"})),
    bad_request("price-int64-overflow", "createProduct", product(price={"amount": 2**63, "currency": "USD"})),
    bad_request("price-float", "createProduct", product(price={"amount": 1.5, "currency": "USD"})),
    bad_request("price-string", "createProduct", product(price={"amount": "100", "currency": "USD"})),
    bad_request("price-exponent", "createProduct", product(price={"amount": 1e300, "currency": "USD"})),
    bad_request("stock-bool", "createProduct", product(stock=True)),
    bad_request("stock-negative-overflow", "createProduct", product(stock=-(2**31) - 1)),
    accepted(
        "price-int32-max",
        "createProduct",
        product(price={"amount": MAX_INT32, "currency": "usd"}),
        price={"amount": MAX_INT32, "currency": "USD"},
    ),
    accepted(
        "price-float-integral",
        "createProduct",
        product(price={"amount": 100.0, "currency": "JPY"}),
        price={"amount": 100, "currency": "JPY"},
    ),
    accepted(
        "description-html-sql", "createProduct", product(description=f"{HTML}\n{SQL}"), description=f"{HTML}\n{SQL}"
    ),
    accepted(
        "description-crlf",
        "createProduct",
        product(description="one\r\ntwo\rthree\tfour"),
        description="one\ntwo\nthree\tfour",
    ),
    accepted("sku-sql", "createProduct", product(sku=SQL), sku=SQL),
    # updateProduct
    refused("update-stock-over-max", "updateProduct", {"id": APPLE, "stock": 1_000_000_001}, ("stock", "OUT_OF_RANGE")),
    refused("update-id-overflow", "updateProduct", {"id": gid("Product", 2**40), "stock": 1}, ("id", "INVALID_ID")),
    refused("update-sku-nul", "updateProduct", {"id": APPLE, "sku": "\x00"}, ("sku", "INVALID")),
    refused(
        "update-currency",
        "updateProduct",
        {"id": APPLE, "price": {"amount": 1, "currency": "BTC"}},
        ("price.currency", "INVALID_CURRENCY"),
    ),
    bad_request("update-stock-int32-overflow", "updateProduct", {"id": APPLE, "stock": 2**31}),
    # placeOrder: quantities, list sizes, keys, payment methods, totals
    refused(
        "quantity-zero",
        "placeOrder",
        order(lines=[{"productId": APPLE, "quantity": 0}]),
        ("lines.0.quantity", "OUT_OF_RANGE"),
    ),
    refused(
        "quantity-negative",
        "placeOrder",
        order(lines=[{"productId": APPLE, "quantity": -1}]),
        ("lines.0.quantity", "OUT_OF_RANGE"),
    ),
    refused(
        "quantity-1001",
        "placeOrder",
        order(lines=[{"productId": APPLE, "quantity": 1001}]),
        ("lines.0.quantity", "OUT_OF_RANGE"),
    ),
    refused("lines-empty", "placeOrder", order(lines=[]), ("lines", "REQUIRED")),
    refused(
        "lines-101", "placeOrder", order(lines=[{"productId": APPLE, "quantity": 1}] * 101), ("lines", "OUT_OF_RANGE")
    ),
    refused(
        "lines-1500-bad-ids",
        "placeOrder",
        order(lines=[{"productId": "x", "quantity": 1}] * 1500),
        ("lines", "OUT_OF_RANGE"),
    ),
    refused(
        "line-product-overflow",
        "placeOrder",
        order(lines=[{"productId": gid("Product", 2**31), "quantity": 1}]),
        ("lines.0.productId", "INVALID_ID"),
    ),
    refused("customer-overflow", "placeOrder", order(customerId=gid("Customer", 2**40)), ("customerId", "INVALID_ID")),
    refused(
        "total-overflow", "placeOrder", order(lines=[{"productId": GOLD, "quantity": 2}]), ("lines", "OUT_OF_RANGE")
    ),
    refused(
        "total-overflow-many-lines",
        "placeOrder",
        order(lines=[{"productId": GOLD, "quantity": 1}, {"productId": APPLE, "quantity": 1}]),
        ("lines", "OUT_OF_RANGE"),
    ),
    refused("key-nul", "placeOrder", order(idempotencyKey="key\x00"), ("idempotencyKey", "INVALID")),
    refused("key-rtl", "placeOrder", order(idempotencyKey=f"key{RLO}"), ("idempotencyKey", "INVALID")),
    refused("key-blank", "placeOrder", order(idempotencyKey="\t \n"), ("idempotencyKey", "REQUIRED")),
    refused("key-256", "placeOrder", order(idempotencyKey="k" * 256), ("idempotencyKey", "TOO_LONG")),
    refused("key-under-body-limit", "placeOrder", order(idempotencyKey=Filler()), ("idempotencyKey", "TOO_LONG")),
    refused("payment-method-nul", "placeOrder", order(paymentMethod="pm_card_visa\x00"), ("paymentMethod", "INVALID")),
    refused("payment-method-sql", "placeOrder", order(paymentMethod=SQL), ("paymentMethod", "INVALID")),
    refused("payment-method-html", "placeOrder", order(paymentMethod=HTML), ("paymentMethod", "INVALID")),
    refused("payment-method-unicode", "placeOrder", order(paymentMethod="pm_card_vísa"), ("paymentMethod", "INVALID")),
    refused("payment-method-256", "placeOrder", order(paymentMethod="p" * 256), ("paymentMethod", "TOO_LONG")),
    refused(
        "payment-method-under-body-limit", "placeOrder", order(paymentMethod=Filler()), ("paymentMethod", "TOO_LONG")
    ),
    refused(
        "key-reused",
        "placeOrder",
        order(idempotencyKey="seed-order", lines=[{"productId": APPLE, "quantity": 2}]),
        ("idempotencyKey", "IDEMPOTENCY_KEY_REUSED"),
    ),
    bad_request("quantity-int32-overflow", "placeOrder", order(lines=[{"productId": APPLE, "quantity": 2**31}])),
    bad_request("quantity-int64-overflow", "placeOrder", order(lines=[{"productId": APPLE, "quantity": 2**63}])),
    bad_request("quantity-float", "placeOrder", order(lines=[{"productId": APPLE, "quantity": 1.5}])),
    bad_request("quantity-nan-string", "placeOrder", order(lines=[{"productId": APPLE, "quantity": "NaN"}])),
    bad_request("lines-nested-lists", "placeOrder", order(lines=nested_list(200))),
    bad_request("lines-null-item", "placeOrder", order(lines=[None])),
    bad_request(
        "line-nested-object", "placeOrder", order(lines=[{"productId": APPLE, "quantity": nested_object(200)}])
    ),
    accepted("key-sql-html-emoji", "placeOrder", order(idempotencyKey=f"{SQL_ORDER}{HTML}{ZWJ_FAMILY}"), status="PAID"),
    # refundOrder and cancelOrder
    refused("refund-zero", "refundOrder", {"orderId": ORDER, "amount": 0}, ("amount", "OUT_OF_RANGE")),
    refused("refund-negative", "refundOrder", {"orderId": ORDER, "amount": -(2**31)}, ("amount", "OUT_OF_RANGE")),
    refused(
        "refund-more-than-captured",
        "refundOrder",
        {"orderId": ORDER, "amount": MAX_INT32},
        ("amount", "REFUND_EXCEEDS_CAPTURED"),
    ),
    refused(
        "refund-order-overflow", "refundOrder", {"orderId": gid("Order", 2**31), "amount": 1}, ("orderId", "INVALID_ID")
    ),
    refused("refund-order-sql", "refundOrder", {"orderId": SQL_ORDER}, ("orderId", "INVALID_ID")),
    refused("refund-wrong-type", "refundOrder", {"orderId": CUSTOMER}, ("orderId", "INVALID_ID")),
    bad_request("refund-int32-overflow", "refundOrder", {"orderId": ORDER, "amount": 2**31}),
    bad_request("refund-float", "refundOrder", {"orderId": ORDER, "amount": 0.5}),
    refused("cancel-order-overflow", "cancelOrder", {"orderId": gid("Order", 2**63 - 1)}, ("orderId", "INVALID_ID")),
    refused("cancel-order-nul", "cancelOrder", {"orderId": "\x00"}, ("orderId", "INVALID_ID")),
    refused("cancel-order-missing", "cancelOrder", {"orderId": gid("Order", MAX_INT32)}, ("orderId", "NOT_FOUND")),
    bad_request("cancel-order-id-list", "cancelOrder", {"orderId": [ORDER]}),
]


@dataclass
class Shop:
    client: GraphQLClient
    ids: dict[str, str]

    def resolve(self, value: Any) -> Any:
        limit = self.client.settings.max_body_bytes
        if isinstance(value, Ref):
            return self.ids[value.name]
        if isinstance(value, Filler):
            # Room for the document and the other fields; the body stays under the limit.
            return value.char * ((limit - 3_000) // len(orjson.dumps(value.char)[1:-1])) + value.suffix
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value

    async def send(self, mutation: str, value: Any) -> httpx.Response:
        variables = {"input": self.resolve(value)}
        body = orjson.dumps({"query": MUTATIONS[mutation], "variables": variables})
        assert len(body) <= self.client.settings.max_body_bytes, "a case meant to reach the resolver must fit"
        return await self.client.post(MUTATIONS[mutation], variables, headers=GRAPHQL_RESPONSE)

    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table a mutation may write."""
        rows = {}
        async with self.client.app.state.engine.connect() as connection:
            for name in TABLES:
                table = metadata.tables[name]
                result = await connection.execute(select(table).order_by(*table.primary_key.columns))
                rows[name] = [tuple(row) for row in result]
        return rows


async def _create(client: GraphQLClient, mutation: str, value: dict[str, Any]) -> str:
    data = await client.execute(MUTATIONS[mutation], {"input": value})
    (payload,) = data.values()
    assert payload["userErrors"] == [], payload
    return str(payload["result"]["id"])


@pytest.fixture
async def shop(client: GraphQLClient) -> Shop:
    ids = {
        "customer": await _create(client, "createCustomer", {"email": "ada@example.com", "name": "Ada Lovelace"}),
        "apple": await _create(client, "createProduct", product(sku="APPLE", name="Apple", stock=10)),
        "gold": await _create(
            client,
            "createProduct",
            product(sku="GOLD", name="Gold", price={"amount": MAX_INT32, "currency": "USD"}, stock=10),
        ),
    }
    shop = Shop(client, ids)
    paid = shop.resolve(order(idempotencyKey="seed-order"))
    ids["order"] = await _create(client, "placeOrder", paid)
    return shop


def assert_clean(response: httpx.Response) -> dict[str, Any]:
    """No 5xx, a JSON body, every error coded and none internal, and nothing of the database in the text."""
    assert response.status_code < 500, response.text
    body = response.json()
    assert isinstance(body, dict), body
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code, error
        assert code != "INTERNAL_SERVER_ERROR", error
    lowered = response.text.lower()
    assert not [leak for leak in LEAKS if leak in lowered], response.text[:2000]
    return body


async def check(shop: Shop, case: Case) -> None:
    before = await shop.snapshot()
    response = await shop.send(case.mutation, case.input)
    body = assert_clean(response)

    if case.request_error is not None:
        assert 400 <= response.status_code < 500, body
        assert body.get("data") is None, body
        assert [e["extensions"]["code"] for e in body["errors"]] == [case.request_error], body
        assert await shop.snapshot() == before, "a refused input changed the store"
        return

    assert response.status_code == 200, body
    assert "errors" not in body, body
    payload = body["data"][case.mutation]
    if case.errors is not None:
        assert payload["result"] is None, payload
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == list(case.errors), payload
        assert all(e["message"] for e in payload["userErrors"]), payload
        assert await shop.snapshot() == before, "a refused input changed the store"
        return

    assert case.returns is not None
    assert payload["userErrors"] == [], payload
    result = payload["result"]
    assert {key: result[key] for key in case.returns} == case.returns
    # Stored exactly so: read back through the graph, from the store.
    read = await shop.client.execute(READ, {"id": result["id"]})
    assert {key: read["node"][key] for key in case.returns} == case.returns
    after = await shop.snapshot()
    assert all(len(after[table]) >= len(rows) for table, rows in before.items()), "rows were deleted"


@pytest.mark.parametrize("mutation", list(MUTATIONS))
async def test_hostile_input_is_refused_cleanly_or_stored_verbatim(shop: Shop, mutation: str) -> None:
    """Every case of the mutation against one store: refusals first (they change nothing), then acceptances."""
    cases = sorted((case for case in CASES if case.mutation == mutation), key=lambda case: case.returns is not None)
    assert cases
    failures = []
    for case in cases:
        try:
            await check(shop, case)
        except AssertionError as error:
            failures.append(f"{case.id}: {str(error)[:1500]}")
    assert not failures, "\n\n".join(failures)


def raw_name(name: bytes) -> bytes:
    """A createCustomer body whose `name` is exactly these bytes between the JSON quotes."""
    return b'{"query": "%s", "variables": {"input": {"email": "a@example.com", "name": "' + name + b'"}}}'


RAW_BODIES = {
    "lone-high-surrogate": raw_name(b"\\ud800"),
    "lone-low-surrogate": raw_name(b"x\\udc00"),
    "reversed-surrogate-pair": raw_name(b"\\ude00\\ud83d"),
    "raw-control-character": raw_name(b"a\x00b"),
    "invalid-utf8": raw_name(b"\xff\xfe"),
    "overlong-utf8-nul": raw_name(b"a\xc0\x80b"),
    "utf8-encoded-surrogate": raw_name(b"\xed\xa0\x80"),
    "json-nested-beyond-parser": b'{"query": "%s", "variables": {"input": ' + b"[" * 5_000 + b"]" * 5_000 + b"}}",
    "truncated-json": raw_name(b"Ada")[:-4],
}
CREATE_CUSTOMER_LINE = b"mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } } }"


@pytest.mark.parametrize("name", list(RAW_BODIES))
async def test_bodies_that_are_not_clean_json_are_refused_with_400(shop: Shop, name: str) -> None:
    before = await shop.snapshot()
    body = RAW_BODIES[name].replace(b"%s", CREATE_CUSTOMER_LINE, 1)
    response = await shop.client.http.post(
        "/graphql", content=body, headers={"Content-Type": "application/json", **GRAPHQL_RESPONSE}
    )
    assert response.status_code == 400, response.text
    assert assert_clean(response).get("data") is None
    assert await shop.snapshot() == before


@pytest.mark.parametrize("mutation", ["createCustomer", "createProduct", "placeOrder"])
async def test_a_megabyte_string_is_refused_by_the_body_limit(shop: Shop, mutation: str) -> None:
    before = await shop.snapshot()
    huge = "x" * 1_000_000
    value = {"createCustomer": customer(name=huge), "createProduct": product(description=huge)}.get(
        mutation, order(idempotencyKey=huge)
    )
    response = await shop.client.post(MUTATIONS[mutation], {"input": shop.resolve(value)}, headers=GRAPHQL_RESPONSE)
    assert response.status_code == 413
    assert_clean(response)
    assert await shop.snapshot() == before


@pytest.mark.parametrize(
    "document",
    [
        # an input object literal nested past the parser's limit
        'mutation { createCustomer(input: {email: "a@example.com", name: "x", x: '
        + "{a: " * 600
        + "1"
        + "}" * 600
        + "}) { userErrors { code } } }",
        # a list literal nested past it
        'mutation { placeOrder(input: {customerId: "x", paymentMethod: "p", idempotencyKey: "k", lines: '
        + "[" * 3_000
        + "]" * 3_000
        + "}) { userErrors { code } } }",
        # a string literal with an escaped lone surrogate
        'mutation { createCustomer(input: {email: "a@example.com", name: "\\ud800"}) { userErrors { code } } }',
        # a string literal with a raw NUL
        'mutation { createCustomer(input: {email: "a@example.com", name: "a\x00"}) { userErrors { code } } }',
        # SQL in place of an argument
        'mutation { createCustomer(input: {email: "a@example.com", name: "x"}); DROP TABLE customer; -- }',
    ],
    ids=["nested-object-literal", "nested-list-literal", "surrogate-escape", "raw-nul", "sql-document"],
)
async def test_hostile_documents_are_refused(shop: Shop, document: str) -> None:
    before = await shop.snapshot()
    response = await shop.client.post(document, headers=GRAPHQL_RESPONSE)
    body = assert_clean(response)
    if response.status_code == 200:  # it ran, and the input was refused as data
        (payload,) = body["data"].values()
        assert payload["userErrors"], body
    else:
        assert 400 <= response.status_code < 500, body
        assert body.get("data") is None
    assert await shop.snapshot() == before


# Regressions: each was a 500 (the database refusing the statement) on PostgreSQL before its fix.


async def test_regression_a_nul_in_the_idempotency_key_is_a_user_error(shop: Shop) -> None:
    """The key was only length-checked, and PostgreSQL refuses NUL in text ("invalid byte sequence")."""
    before = await shop.snapshot()
    body = assert_clean(await shop.send("placeOrder", order(idempotencyKey="k\x00")))
    assert body["data"]["placeOrder"]["userErrors"][0]["field"] == "idempotencyKey"
    assert body["data"]["placeOrder"]["userErrors"][0]["code"] == "INVALID"
    assert await shop.snapshot() == before


async def test_regression_an_order_total_beyond_the_integer_column_is_refused(shop: Shop) -> None:
    """Each price fits an INTEGER but their sum did not: PostgreSQL refused the order row ("out of int32 range")."""
    before = await shop.snapshot()
    body = assert_clean(await shop.send("placeOrder", order(lines=[{"productId": GOLD, "quantity": 2}])))
    assert body["data"]["placeOrder"]["userErrors"] == [
        {"field": "lines", "code": "OUT_OF_RANGE", "message": body["data"]["placeOrder"]["userErrors"][0]["message"]}
    ]
    assert await shop.snapshot() == before
