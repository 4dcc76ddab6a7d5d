from __future__ import annotations

import strawberry

from integrations.errors import ErrorCode, InputErrors, UserInputError
from resolvers import validation
from resolvers.access.rules import ORDERS_WRITE, PAYMENTS_WRITE, ROLE_CUSTOMER, act_for_customer, can_read_order
from resolvers.order.placement import MAX_LINES, LineRequest, PlaceOrderRequest, place_order
from resolvers.order.refunds import cancel_order, refund_order
from schema.context import Info
from schema.errors import INPUT_ERRORS, UserError, user_errors
from schema.ids import decode_typed_id
from schema.order.types import Order
from schema.permissions import requires


@strawberry.input(description="One product and how many of it.")
class OrderLineInput:
    product_id: strawberry.ID = strawberry.field(description="The product to order.")
    quantity: int = strawberry.field(description="Units (1 to 1000).")


@strawberry.input(description="A new order, paid at once.")
class PlaceOrderInput:
    customer_id: strawberry.ID = strawberry.field(description="Who places the order.")
    lines: list[OrderLineInput] = strawberry.field(description="1 to 100 lines, each product at most once.")
    payment_method: str = strawberry.field(
        description='The provider\'s payment method id, e.g. Stripe\'s test "pm_card_visa" or "pm_card_chargeDeclined" '
        "(ASCII letters, digits, _ and -; at most 255 characters)."
    )
    idempotency_key: str = strawberry.field(
        description="A key the client chooses per order (e.g. a UUID). Sending the same input with the same key again "
        "returns the same order and never charges twice; different input with a used key is refused. At most 255 "
        "characters, compared exactly as sent."
    )


@strawberry.type(description="Result of placeOrder.")
class PlaceOrderPayload:
    order: Order | None = strawberry.field(
        description="The order; null only when the input was refused. A declined payment returns the order "
        "(status PAYMENT_FAILED) together with a CARD_DECLINED user error."
    )
    user_errors: list[UserError] = strawberry.field(description="Why the order was refused or is not paid.")


@strawberry.input(description="A refund of a paid order.")
class RefundOrderInput:
    order_id: strawberry.ID = strawberry.field(description="The order to refund.")
    amount: int | None = strawberry.field(
        default=None,
        description="Minor units of the order's currency; omitted or null refunds everything not yet refunded.",
    )


@strawberry.type(description="Result of refundOrder.")
class RefundOrderPayload:
    order: Order | None = strawberry.field(description="The refunded order, or null if userErrors is not empty.")
    user_errors: list[UserError] = strawberry.field(description="Why the refund was refused; empty on success.")


@strawberry.input(description="An order to cancel.")
class CancelOrderInput:
    order_id: strawberry.ID = strawberry.field(description="The order to cancel.")


@strawberry.type(description="Result of cancelOrder.")
class CancelOrderPayload:
    order: Order | None = strawberry.field(description="The cancelled order, or null if userErrors is not empty.")
    user_errors: list[UserError] = strawberry.field(description="Why it could not be cancelled; empty on success.")


def _request(data: PlaceOrderInput) -> PlaceOrderRequest:
    # Too many lines is one error, not one per line: nothing of such an input is decoded.
    validation.count("lines", len(data.lines), minimum=0, maximum=MAX_LINES)
    errors: list[UserInputError] = []

    def decode(value: str, kind: str, field: str) -> int:
        try:
            return decode_typed_id(value, kind, field=field)
        except UserInputError as error:
            errors.append(error)
            return 0

    customer_id = decode(data.customer_id, "Customer", "customer_id")
    lines = tuple(
        LineRequest(product_id=decode(line.product_id, "Product", f"lines.{index}.product_id"), quantity=line.quantity)
        for index, line in enumerate(data.lines)
    )
    if errors:
        raise InputErrors(errors)
    return PlaceOrderRequest(
        customer_id=customer_id,
        lines=lines,
        payment_method=data.payment_method,
        idempotency_key=data.idempotency_key,
    )


async def _act_on_order(info: Info, order_id: int, what: str) -> None:
    """Staff act on any order; a customer on its own, and another's is as unknown to it as a missing one."""
    principal = info.context.principal
    if principal.has(ORDERS_WRITE):
        return
    row = await info.context.loaders.order_by_id.load(order_id)
    if row is None or not can_read_order(principal, row.customer_id):
        raise UserInputError("order_id", "no order with this id", code=ErrorCode.NOT_FOUND)
    act_for_customer(principal, row.customer_id, ORDERS_WRITE, what)


@strawberry.type
class OrderMutation:
    @strawberry.mutation(
        description="Place an order: reserve stock, charge the payment method, queue the confirmation email. "
        "Idempotent per idempotencyKey. A customer orders for itself only.",
        directives=[requires(ORDERS_WRITE, ROLE_CUSTOMER)],
    )
    async def place_order(self, info: Info, input: PlaceOrderInput) -> PlaceOrderPayload:
        try:
            request = _request(input)
            act_for_customer(info.context.principal, request.customer_id, ORDERS_WRITE, "place an order")
            placement = await place_order(info.context.store, info.context.services, request)
        except INPUT_ERRORS as error:
            return PlaceOrderPayload(order=None, user_errors=user_errors(error))
        order = None if placement.order is None else Order.from_row(placement.order)
        return PlaceOrderPayload(order=order, user_errors=[e for error in placement.errors for e in user_errors(error)])

    @strawberry.mutation(
        description="Refund part or all of a paid order (never more than was captured).",
        directives=[requires(PAYMENTS_WRITE)],
    )
    async def refund_order(self, info: Info, input: RefundOrderInput) -> RefundOrderPayload:
        try:
            pk = decode_typed_id(input.order_id, "Order", field="order_id")
            row = await refund_order(info.context.services, pk, input.amount)
        except INPUT_ERRORS as error:
            return RefundOrderPayload(order=None, user_errors=user_errors(error))
        return RefundOrderPayload(order=Order.from_row(row), user_errors=[])

    @strawberry.mutation(
        description="Cancel an order: refund what was paid or cancel the pending payment, and restock. "
        "Cancelling a cancelled order changes nothing. A customer cancels its own orders only.",
        directives=[requires(ORDERS_WRITE, ROLE_CUSTOMER)],
    )
    async def cancel_order(self, info: Info, input: CancelOrderInput) -> CancelOrderPayload:
        try:
            pk = decode_typed_id(input.order_id, "Order", field="order_id")
            await _act_on_order(info, pk, "cancel an order")
            row = await cancel_order(info.context.services, pk)
        except INPUT_ERRORS as error:
            return CancelOrderPayload(order=None, user_errors=user_errors(error))
        return CancelOrderPayload(order=Order.from_row(row), user_errors=[])
