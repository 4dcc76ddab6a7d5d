"""The embedded `local` provider: a test-mode ledger in the store that behaves like Stripe's test mode.

It honours Stripe's documented test payment methods, so the same requests work against both providers:

- ``pm_card_visa``, ``pm_card_mastercard``, … succeed;
- ``pm_card_chargeDeclined`` (and the other ``…Declined…`` / ``pm_card_chargeCustomerFail``) are declined;
- ``pm_card_authenticationRequired`` / ``pm_card_threeDSecure2Required`` need customer action (3-D Secure).

Idempotency keys are enforced by unique constraints, as Stripe does: a repeated key returns the first result.
"""

from __future__ import annotations

import secrets

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from integrations.errors import ErrorCode, NotFoundError, UserInputError
from integrations.payments.base import PaymentRequest, ProviderPayment, ProviderRefund, status_of
from integrations.store.models import LocalPaymentIntent, LocalRefund

SUCCEEDING = frozenset(
    {
        "pm_card_visa",
        "pm_card_visa_debit",
        "pm_card_mastercard",
        "pm_card_mastercard_debit",
        "pm_card_amex",
        "pm_card_discover",
        "pm_card_jcb",
        "pm_card_unionpay",
    }
)
DECLINING = {
    "pm_card_chargeDeclined": ("card_declined", "Your card was declined."),
    "pm_card_visa_chargeDeclined": ("card_declined", "Your card was declined."),
    "pm_card_chargeCustomerFail": ("card_declined", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": ("card_declined", "Your card has insufficient funds."),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", "Your card has expired."),
    "pm_card_chargeDeclinedIncorrectCvc": ("incorrect_cvc", "Your card's security code is incorrect."),
}
REQUIRING_ACTION = frozenset({"pm_card_authenticationRequired", "pm_card_threeDSecure2Required"})


class LocalPaymentProvider:
    name = "local"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        method = request.payment_method
        if method not in SUCCEEDING and method not in DECLINING and method not in REQUIRING_ACTION:
            raise UserInputError("payment_method", f"No such payment method: {method!r}", code=ErrorCode.INVALID)
        failure = DECLINING.get(method)
        intent = LocalPaymentIntent(
            id=f"pi_local_{secrets.token_hex(12)}",
            idempotency_key=request.idempotency_key,
            amount=request.amount,
            currency=request.currency.lower(),
            payment_method=method,
            status="requires_action"
            if method in REQUIRING_ACTION
            else "requires_payment_method"
            if failure
            else "succeeded",
            failure_code=failure[0] if failure else None,
            failure_message=failure[1] if failure else None,
            order_reference=request.metadata.get("order_number"),
        )
        try:
            async with self._sessionmaker() as session, session.begin():
                session.add(intent)
        except IntegrityError:
            async with self._sessionmaker() as session:
                existing = await session.scalar(
                    select(LocalPaymentIntent).where(col(LocalPaymentIntent.idempotency_key) == request.idempotency_key)
                )
            if existing is None:
                raise
            intent = existing
        return _payment(intent)

    async def retrieve_payment(self, reference: str) -> ProviderPayment:
        async with self._sessionmaker() as session:
            return _payment(await _intent(session, reference))

    async def cancel_payment(self, reference: str, *, idempotency_key: str) -> ProviderPayment:
        async with self._sessionmaker() as session, session.begin():
            intent = await _intent(session, reference, for_update=True)
            if intent.status == "canceled":
                return _payment(intent)
            if intent.status not in ("requires_payment_method", "requires_action", "requires_confirmation"):
                raise UserInputError(
                    None, f"A payment in status {intent.status} cannot be cancelled", code=ErrorCode.INVALID_STATE
                )
            intent.status = "canceled"
            return _payment(intent)

    async def refund_payment(self, reference: str, amount: int | None, *, idempotency_key: str) -> ProviderRefund:
        try:
            async with self._sessionmaker() as session, session.begin():
                intent = await _intent(session, reference, for_update=True)
                # The key is looked up after the row lock (PostgreSQL): a concurrent refund with this key has then
                # committed, and is the answer, rather than "nothing left to refund" for "refund the rest".
                existing = await session.scalar(_refund_by_key(idempotency_key))
                if existing is not None:
                    if existing.payment_intent_id != intent.id:
                        intent = await _intent(session, existing.payment_intent_id)
                    return _refund(existing, intent.currency)
                if intent.status != "succeeded":
                    raise UserInputError(None, "Only a succeeded payment can be refunded", code=ErrorCode.INVALID_STATE)
                remaining = intent.amount - intent.amount_refunded
                amount = remaining if amount is None else amount
                if not 0 < amount <= remaining:
                    raise UserInputError(
                        "amount",
                        f"Refund amount {amount} is greater than what is left to refund ({remaining})",
                        code=ErrorCode.REFUND_EXCEEDS_CAPTURED,
                    )
                refund = LocalRefund(
                    id=f"re_local_{secrets.token_hex(12)}",
                    payment_intent_id=intent.id,
                    idempotency_key=idempotency_key,
                    amount=amount,
                )
                session.add(refund)
                # Claim the key before touching the amount: a concurrent refund with the same key (SQLite reads
                # without a lock, so this one may have seen the amount before it) fails here on the unique key and
                # answers with that refund, instead of failing the increment below as "nothing left".
                await session.flush()
                # One atomic increment, conditional on what is left: concurrent refunds can neither lose an
                # update nor add up to more than was captured (SQLite has no SELECT … FOR UPDATE).
                result = await session.execute(
                    update(LocalPaymentIntent)
                    .where(
                        col(LocalPaymentIntent.id) == intent.id,
                        col(LocalPaymentIntent.amount_refunded) + amount <= col(LocalPaymentIntent.amount),
                    )
                    .values(amount_refunded=col(LocalPaymentIntent.amount_refunded) + amount)
                    .execution_options(synchronize_session=False)
                )
                if getattr(result, "rowcount", 0) != 1:
                    raise UserInputError(
                        "amount",
                        "Refund amount is greater than what is left to refund",
                        code=ErrorCode.REFUND_EXCEEDS_CAPTURED,
                    )
        except IntegrityError:  # the same key raced us: return its refund, as Stripe would
            async with self._sessionmaker() as session:
                raced = await session.scalar(
                    select(LocalRefund).where(col(LocalRefund.idempotency_key) == idempotency_key)
                )
                if raced is None:
                    raise
                return _refund(raced, (await _intent(session, raced.payment_intent_id)).currency)
        return _refund(refund, intent.currency)

    async def list_refunds(self, reference: str) -> list[ProviderRefund]:
        async with self._sessionmaker() as session:
            intent = await _intent(session, reference)
            refunds = await session.scalars(
                select(LocalRefund)
                .where(col(LocalRefund.payment_intent_id) == reference)
                .order_by(col(LocalRefund.created_at))
            )
            return [_refund(refund, intent.currency) for refund in refunds]

    async def aclose(self) -> None:
        return None


async def _intent(session: AsyncSession, reference: str, *, for_update: bool = False) -> LocalPaymentIntent:
    statement = select(LocalPaymentIntent).where(col(LocalPaymentIntent.id) == reference)
    if for_update:
        statement = statement.with_for_update()
    intent = await session.scalar(statement)
    if intent is None:
        raise NotFoundError(f"No such payment: {reference!r}")
    return intent


def _refund_by_key(key: str) -> SelectOfScalar[LocalRefund]:
    return select(LocalRefund).where(col(LocalRefund.idempotency_key) == key)


def _payment(intent: LocalPaymentIntent) -> ProviderPayment:
    return ProviderPayment(
        reference=intent.id,
        status=status_of(
            intent.status,
            failed=intent.failure_code is not None,
            amount=intent.amount,
            amount_refunded=intent.amount_refunded,
        ),
        amount=intent.amount,
        amount_refunded=intent.amount_refunded,
        currency=intent.currency.upper(),
        created_at=intent.created_at,
        failure_code=intent.failure_code,
        failure_message=intent.failure_message,
    )


def _refund(refund: LocalRefund, currency: str) -> ProviderRefund:
    return ProviderRefund(
        reference=refund.id,
        payment_reference=refund.payment_intent_id,
        amount=refund.amount,
        currency=currency.upper(),
        status="succeeded",
        created_at=refund.created_at,
    )
