"""placeOrder: validate, reserve stock and write the order in one transaction, then pay, exactly once per key.

1. The request is validated against the store (customer, products, one currency, quantities, stock).
2. One transaction writes the order (PENDING), its lines, the stock reservation (``stock = stock - n WHERE
   stock >= n``), the client's idempotency record and the payment row holding a *lease*. The unique
   idempotency record decides races: of 50 concurrent identical requests, 49 fail to insert it and become
   replays.
3. The lease holder creates and confirms the payment with a key derived from the client's key, then settles
   the order (`settlement.settle`): PAID plus the confirmation email in one transaction, or PAYMENT_FAILED with
   the stock released.
4. A replay waits while another request holds the lease, then answers with the same order. If nobody holds it
   (the provider was unavailable, or the process died mid-call) the replay takes the lease and finishes the
   payment with the same derived key, so the provider sees one payment.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta

import orjson
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from integrations.errors import ErrorCode, InputErrors, UpstreamError, UpstreamUnavailableError, UserInputError
from integrations.payments.base import PaymentRequest, PaymentStatus, ProviderPayment
from integrations.store.models import (
    Customer,
    IdempotencyRecord,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    Product,
)
from integrations.store.session import StoreSession
from integrations.store.types import utcnow
from resolvers import validation
from resolvers.money import is_known_currency
from resolvers.order.numbers import new_order_number
from resolvers.order.settlement import order_and_payment, settle
from resolvers.payment import lease
from resolvers.services import Services

OPERATION = "placeOrder"
MAX_LINES = 100
MAX_QUANTITY = 1000
KEY_MAX = 255
PAYMENT_METHOD_MAX = 255
MAX_TOTAL = validation.MAX_INT32
"""An order's total is an INTEGER column (as are the payment's amount and the provider ledger's)."""
POLL_INTERVAL = 0.05
INVALID_PAYMENT_METHOD = "invalid_payment_method"
PROVIDER_REFUSED = "provider_refused"
FAILURE_CODES = {INVALID_PAYMENT_METHOD: ErrorCode.INVALID, PROVIDER_REFUSED: ErrorCode.PAYMENT_FAILED}
"""Our own failure codes; any other failure is the card's (CARD_DECLINED)."""

logger = logging.getLogger("resolvers.order.placement")


@dataclass(frozen=True)
class LineRequest:
    product_id: int
    quantity: int


@dataclass(frozen=True)
class PlaceOrderRequest:
    customer_id: int
    lines: tuple[LineRequest, ...]
    payment_method: str
    idempotency_key: str

    def fingerprint(self) -> str:
        """Same input, same fingerprint: lines are compared as a set of (product, quantity)."""
        canonical = {
            "customer": self.customer_id,
            "lines": sorted((line.product_id, line.quantity) for line in self.lines),
            "paymentMethod": self.payment_method,
        }
        return hashlib.sha256(orjson.dumps(canonical)).hexdigest()


@dataclass
class Placement:
    """The order (None only when the input was refused) and what the client should know about it."""

    order: Order | None
    errors: list[UserInputError] = field(default_factory=list)


async def place_order(store: StoreSession, services: Services, request: PlaceOrderRequest) -> Placement:
    request = _validate_shape(request)
    existing = await _record(services, request.idempotency_key)
    if existing is not None:
        return await _replay(services, request, existing)
    customer, products = await _load_references(store, request)
    try:
        order, payment = await _write_order(store, services, request, customer, products)
    except IntegrityError:
        raced = await _record(services, request.idempotency_key)
        if raced is None:
            raise
        return await _replay(services, request, raced)
    return await _pay(services, order, payment, request.payment_method)


def payment_key(client_key: str) -> str:
    """The provider idempotency key for an order's payment: stable for the client's key, opaque, 64 chars."""
    return hashlib.sha256(f"{OPERATION}:{client_key}".encode()).hexdigest()


def _validate_shape(request: PlaceOrderRequest) -> PlaceOrderRequest:
    """The request with its payment method trimmed, or every problem found without reading the store."""
    check = validation.Collector()
    check(validation.opaque, "idempotency_key", request.idempotency_key, max_length=KEY_MAX)
    payment_method = check(validation.token, "payment_method", request.payment_method, max_length=PAYMENT_METHOD_MAX)
    check(validation.count, "lines", len(request.lines), minimum=1, maximum=MAX_LINES)
    seen: set[int] = set()
    for index, line in enumerate(request.lines[:MAX_LINES]):
        check(validation.integer, f"lines.{index}.quantity", line.quantity, minimum=1, maximum=MAX_QUANTITY)
        if line.product_id in seen:
            check.add(
                UserInputError(
                    f"lines.{index}.product_id",
                    "each product may appear on one line only; add up the quantities",
                    code=ErrorCode.DUPLICATE,
                )
            )
        seen.add(line.product_id)
    check.raise_if_any()
    assert payment_method is not None
    return replace(request, payment_method=payment_method)


async def _load_references(store: StoreSession, request: PlaceOrderRequest) -> tuple[Customer, dict[int, Product]]:
    customer = await store.scalar(select(Customer).where(col(Customer.id) == request.customer_id))
    wanted = [line.product_id for line in request.lines]
    products = {
        product.id: product
        for product in await store.scalars(select(Product).where(col(Product.id).in_(wanted)))
        if product.id is not None
    }
    check = validation.Collector()
    if customer is None:
        check.add(UserInputError("customer_id", "no customer with this id", code=ErrorCode.NOT_FOUND))
    currencies = {product.currency for product in products.values()}
    for index, line in enumerate(request.lines):
        product = products.get(line.product_id)
        if product is None:
            check.add(UserInputError(f"lines.{index}.product_id", "no product with this id", code=ErrorCode.NOT_FOUND))
        elif product.stock < line.quantity:
            check.add(_insufficient_stock(index, product))
    if len(currencies) > 1:
        check.add(
            UserInputError(
                "lines",
                f"all products of an order must share one currency (got {', '.join(sorted(currencies))})",
                code=ErrorCode.CURRENCY_MISMATCH,
            )
        )
    elif currencies and not is_known_currency(next(iter(currencies))):
        check.add(UserInputError("lines", "the products' currency is not supported", code=ErrorCode.INVALID_CURRENCY))
    if len(products) == len(request.lines):
        total = sum(products[line.product_id].price * line.quantity for line in request.lines)
        if total > MAX_TOTAL:
            check.add(
                UserInputError(
                    "lines",
                    f"the order total ({total} minor units) exceeds the largest amount an order can hold ({MAX_TOTAL})",
                    code=ErrorCode.OUT_OF_RANGE,
                )
            )
    check.raise_if_any()
    assert customer is not None
    return customer, products


def _insufficient_stock(index: int, product: Product) -> UserInputError:
    return UserInputError(
        f"lines.{index}.quantity",
        f"only {product.stock} of {product.sku} in stock",
        code=ErrorCode.INSUFFICIENT_STOCK,
    )


async def _write_order(
    store: StoreSession,
    services: Services,
    request: PlaceOrderRequest,
    customer: Customer,
    products: dict[int, Product],
) -> tuple[Order, Payment]:
    currency = next(iter(products.values())).currency
    total = sum(products[line.product_id].price * line.quantity for line in request.lines)
    assert customer.id is not None
    async with store.transaction() as session:
        # The first statement writes, so on SQLite the transaction takes the write lock before reading anything.
        order = Order(
            number=new_order_number(),
            customer_id=customer.id,
            status=OrderStatus.PENDING,
            total=total,
            currency=currency,
        )
        session.add(order)
        await session.flush()
        assert order.id is not None
        session.add(
            IdempotencyRecord(
                operation=OPERATION,
                key=request.idempotency_key,
                request_hash=request.fingerprint(),
                order_id=order.id,
            )
        )
        await session.flush()  # a concurrent duplicate fails here, before it touches any stock
        await _reserve_stock(session, request, products)
        for line in request.lines:
            session.add(
                OrderLine(
                    order_id=order.id,
                    product_id=line.product_id,
                    quantity=line.quantity,
                    unit_price=products[line.product_id].price,
                )
            )
        payment = Payment(
            order_id=order.id,
            provider=services.payments.name,
            idempotency_key=payment_key(request.idempotency_key),
            status=PaymentStatus.PROCESSING,
            amount=total,
            currency=currency,
            locked_until=utcnow() + timedelta(seconds=services.payment_lease),
        )
        session.add(payment)
    return order, payment


async def _reserve_stock(session: AsyncSession, request: PlaceOrderRequest, products: dict[int, Product]) -> None:
    errors = []
    for index, line in enumerate(request.lines):
        result = await session.execute(
            update(Product)
            .where(col(Product.id) == line.product_id, col(Product.stock) >= line.quantity)
            .values(stock=col(Product.stock) - line.quantity)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            errors.append(_insufficient_stock(index, products[line.product_id]))
    if errors:
        raise InputErrors(errors)  # rolls the whole order back


async def _pay(services: Services, order: Order, payment: Payment, payment_method: str) -> Placement:
    """Talk to the provider while holding the payment's lease, then settle; the lease is released either way."""
    assert order.id is not None
    try:
        if payment.amount == 0:  # nothing to charge (free products): providers refuse zero-amount payments
            outcome = _free(payment)
        elif payment.reference is not None:
            outcome = await services.payments.retrieve_payment(payment.reference)
        else:
            outcome = await services.payments.create_payment(
                PaymentRequest(
                    amount=payment.amount,
                    currency=payment.currency,
                    payment_method=payment_method,
                    idempotency_key=payment.idempotency_key,
                    description=f"Order {order.number}",
                    metadata={"order_number": order.number},
                )
            )
    except UserInputError as error:  # the provider refused the payment method: the order fails like a decline
        outcome = _refused(payment, error.message, INVALID_PAYMENT_METHOD)
    except UpstreamError as error:  # refused for another reason: fail the order rather than leave it hanging
        logger.error("payment for order %s refused by the provider: %s", order.number, error.message)
        outcome = _refused(payment, "The payment provider refused the payment.", PROVIDER_REFUSED)
    except UpstreamUnavailableError:
        await lease.release(services, payment.id)
        return await _result(services, order.id, provider_unavailable=True)
    except BaseException:
        await lease.release(services, payment.id)
        raise
    async with services.sessionmaker() as session, session.begin():
        row = await session.get_one(Payment, payment.id, with_for_update=True, populate_existing=True)
        await settle(session, row, outcome, services=services)
    return await _result(services, order.id)


def _free(payment: Payment) -> ProviderPayment:
    return ProviderPayment(
        reference="",
        status=PaymentStatus.SUCCEEDED,
        amount=0,
        amount_refunded=0,
        currency=payment.currency,
        created_at=payment.created_at,
    )


def _refused(payment: Payment, message: str, code: str) -> ProviderPayment:
    return ProviderPayment(
        reference="",
        status=PaymentStatus.FAILED,
        amount=payment.amount,
        amount_refunded=0,
        currency=payment.currency,
        created_at=payment.created_at,
        failure_code=code,
        failure_message=message,
    )


async def _record(services: Services, key: str) -> IdempotencyRecord | None:
    async with services.sessionmaker() as session:
        return await session.scalar(
            select(IdempotencyRecord).where(
                col(IdempotencyRecord.operation) == OPERATION, col(IdempotencyRecord.key) == key
            )
        )


async def _replay(services: Services, request: PlaceOrderRequest, record: IdempotencyRecord) -> Placement:
    if record.request_hash != request.fingerprint():
        raise InputErrors(
            [
                UserInputError(
                    "idempotency_key",
                    "this idempotencyKey was already used for a different order; use a new key for a new order",
                    code=ErrorCode.IDEMPOTENCY_KEY_REUSED,
                )
            ]
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + services.payment_lease
    while True:
        order, payment = await order_and_payment(services, record.order_id)
        assert order is not None, "an idempotency record's order is deleted with it"
        assert payment is not None
        settled = order.status != OrderStatus.PENDING or payment.status == PaymentStatus.REQUIRES_ACTION
        if settled:
            return await _result(services, record.order_id)
        now = utcnow()
        if payment.locked_until is None or payment.locked_until <= now:
            if await lease.take(services, payment.id):
                return await _pay(services, order, payment, request.payment_method)
        elif loop.time() >= deadline:
            return await _result(services, record.order_id, provider_unavailable=True)
        await asyncio.sleep(POLL_INTERVAL)


async def _result(services: Services, order_id: int, *, provider_unavailable: bool = False) -> Placement:
    """The placement as every request with this key sees it: the order and, when it is not paid, why."""
    order, payment = await order_and_payment(services, order_id)
    assert order is not None
    errors: list[UserInputError] = []
    if order.status == OrderStatus.PAYMENT_FAILED and payment is not None:
        errors.append(
            UserInputError(
                "payment_method",
                payment.failure_message or "The payment was declined.",
                code=FAILURE_CODES.get(payment.failure_code or "", ErrorCode.CARD_DECLINED),
            )
        )
    elif order.status == OrderStatus.PENDING and payment is not None:
        if payment.status == PaymentStatus.REQUIRES_ACTION:
            errors.append(
                UserInputError(
                    "payment_method",
                    "The payment needs the customer's authentication (3-D Secure) before it can complete.",
                    code=ErrorCode.PAYMENT_REQUIRES_ACTION,
                )
            )
        elif provider_unavailable:
            errors.append(
                UserInputError(
                    None,
                    "The payment provider is unavailable; the order is kept and stock reserved. "
                    "Retry with the same idempotencyKey to complete the payment.",
                    code=ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE,
                )
            )
    return Placement(order=order, errors=errors)
