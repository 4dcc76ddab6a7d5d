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
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
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


class PaymentStatus(StrEnum):
    """Provider-neutral payment state (Stripe's PaymentIntent statuses folded into what the graph shows)."""

    PROCESSING = "PROCESSING"
    REQUIRES_ACTION = "REQUIRES_ACTION"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"


class EmailStatus(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


def _one_of(enum: type[StrEnum]) -> str:
    return ", ".join(f"'{member.value}'" for member in enum)


_STATUSES = _one_of(OrderStatus)
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


class IdempotencyRecord(Base, table=True):
    """A client's idempotency key for one operation, claimed in the same transaction as the work it guards.

    The unique (operation, key) pair is what makes 50 concurrent identical requests produce one order: every
    request but one fails to insert its record and reads the winner's result instead.
    """

    __tablename__ = "idempotency_record"
    __table_args__ = (
        UniqueConstraint("operation", "key"),
        CheckConstraint("length(key) > 0", name="key_not_empty"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    operation: str = Field(sa_column=Column(String(32), nullable=False))
    key: str = Field(sa_column=Column(String(255), nullable=False))
    request_hash: str = Field(sa_column=Column(String(64), nullable=False))
    order_id: int = Field(
        sa_column=Column(Integer, ForeignKey("order.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Payment(Base, table=True):
    """The gateway's record of an order's payment at a provider; the provider's own data is read live."""

    __tablename__ = "payment"
    __table_args__ = (
        UniqueConstraint("order_id"),
        UniqueConstraint("provider", "reference"),
        UniqueConstraint("idempotency_key"),
        CheckConstraint(f"status IN ({_one_of(PaymentStatus)})", name="status_known"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("refunded >= 0 AND refunded <= amount", name="refunded_within_amount"),
        CheckConstraint("length(currency) = 3", name="currency_iso4217"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    order_id: int = Field(sa_column=Column(Integer, ForeignKey("order.id", ondelete="CASCADE"), nullable=False))
    provider: str = Field(sa_column=Column(String(16), nullable=False))
    reference: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    idempotency_key: str = Field(sa_column=Column(String(64), nullable=False))
    status: PaymentStatus = Field(sa_column=Column(String(32), nullable=False))
    amount: int = Field(sa_column=Column(Integer, nullable=False))
    refunded: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    failure_code: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    failure_message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    locked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    """While set and in the future, one request is talking to the provider about this payment."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class OutboxEmail(Base, table=True):
    """A transactional email, written in the same transaction as the change it reports (the outbox pattern).

    The delivery worker claims a row by setting `locked_until` (a lease): a worker killed mid-send leaves a lease
    that expires, and the row is sent again (at least once; receivers deduplicate by `message_id`).
    """

    __tablename__ = "email_outbox"
    __table_args__ = (
        UniqueConstraint("message_id"),
        CheckConstraint(f"status IN ({_one_of(EmailStatus)})", name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index(None, "status", "next_attempt_at"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    order_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("order.id", ondelete="CASCADE"), nullable=True, index=True),
    )
    kind: str = Field(sa_column=Column(String(64), nullable=False))
    message_id: str = Field(sa_column=Column(String(255), nullable=False))
    recipient: str = Field(sa_column=Column(String(EMAIL_MAX), nullable=False))
    subject: str = Field(sa_column=Column(String(255), nullable=False))
    text_body: str = Field(sa_column=Column(Text, nullable=False))
    html_body: str = Field(sa_column=Column(Text, nullable=False))
    status: EmailStatus = Field(sa_column=Column(String(16), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    locked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class WebhookEvent(Base, table=True):
    """A provider event already applied; its id makes a replayed delivery a no-op."""

    __tablename__ = "webhook_event"
    __table_args__ = (UniqueConstraint("provider", "event_id"), {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    provider: str = Field(sa_column=Column(String(16), nullable=False))
    event_id: str = Field(sa_column=Column(String(255), nullable=False))
    type: str = Field(sa_column=Column(String(64), nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class LocalPaymentIntent(Base, table=True):
    """The `local` payment provider's ledger: a test-mode stand-in for Stripe's PaymentIntents."""

    __tablename__ = "local_payment_intent"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount", name="refunded_within_amount"),
    )

    id: str = Field(sa_column=Column(String(64), primary_key=True))
    idempotency_key: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    amount: int = Field(sa_column=Column(Integer, nullable=False))
    amount_refunded: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    payment_method: str = Field(sa_column=Column(String(255), nullable=False))
    status: str = Field(sa_column=Column(String(32), nullable=False))
    failure_code: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    failure_message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    order_reference: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class LocalRefund(Base, table=True):
    __tablename__ = "local_refund"
    __table_args__ = (UniqueConstraint("idempotency_key"), CheckConstraint("amount > 0", name="amount_positive"))

    id: str = Field(sa_column=Column(String(64), primary_key=True))
    payment_intent_id: str = Field(
        sa_column=Column(String(64), ForeignKey("local_payment_intent.id"), nullable=False, index=True)
    )
    idempotency_key: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    amount: int = Field(sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


CLIENT_MAX = 100
DOCUMENT_ID_MAX = 200
_LOWER_HEX_64 = "length(sha256) = 64 AND ltrim(sha256, '0123456789abcdef') = ''"  # same meaning on both databases


class TrustedDocument(Base, table=True):
    """An operation a partner client registered ahead of time (a trusted document, or persisted operation).

    `document_id` is the id the client's manifest gave it (Apollo: the body's sha256; Relay: often an md5), and
    ids are immutable: the same (client, document_id) never changes its text. `sha256` is always the sha256 of
    `document`, so clients that send a hash find it whatever their manifest's ids are.
    """

    __tablename__ = "trusted_document"
    __table_args__ = (
        UniqueConstraint("client", "document_id"),
        CheckConstraint("length(client) > 0", name="client_not_empty"),
        CheckConstraint("length(document_id) > 0", name="document_id_not_empty"),
        CheckConstraint(_LOWER_HEX_64, name="sha256_lower_hex"),
        Index(None, "client", "sha256"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    client: str = Field(sa_column=Column(String(CLIENT_MAX), nullable=False))
    document_id: str = Field(sa_column=Column(String(DOCUMENT_ID_MAX), nullable=False))
    sha256: str = Field(sa_column=Column(String(64), nullable=False))
    document: str = Field(sa_column=Column(Text, nullable=False))
    operation_name: str | None = Field(default=None, sa_column=Column(String(NAME_MAX), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ClientPolicy(Base, table=True):
    """How the gateway treats one client's requests: `safelist` means only its trusted documents may run."""

    __tablename__ = "client_policy"
    __table_args__ = (
        UniqueConstraint("client"),
        CheckConstraint("length(client) > 0", name="client_not_empty"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    client: str = Field(sa_column=Column(String(CLIENT_MAX), nullable=False))
    safelist: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


API_KEY_ID_LENGTH = 12
"""Lower-case hex digits of an API key's public id (48 random bits; the UNIQUE constraint settles collisions)."""
SCOPES_MAX = 2000


def _lower_hex(column: str, length: int) -> str:
    """`column` holds exactly `length` lower-case hex digits (the same meaning on both databases)."""
    return f"length({column}) = {length} AND ltrim({column}, '0123456789abcdef') = ''"


class ApiKey(Base, table=True):
    """A partner service's API key, `gwk_<public_id>_<secret>`. The key itself is never stored, only its SHA-256.

    `public_id` finds the row and is not secret (`gateway apikey list` shows it, `revoke` takes it); the hash of
    the whole key proves the caller holds it. The key acts for `client`, whose trusted-document policy then
    applies, with its `scopes` (space-separated, e.g. ``orders:read products:read``). Revoking sets
    `revoked_at` and keeps the row, so `list` still tells when it was created, last used and revoked.
    """

    __tablename__ = "api_key"
    __table_args__ = (
        UniqueConstraint("public_id"),
        CheckConstraint(_lower_hex("public_id", API_KEY_ID_LENGTH), name="public_id_lower_hex"),
        CheckConstraint(_lower_hex("key_hash", 64), name="key_hash_lower_hex"),
        CheckConstraint("length(client) > 0", name="client_not_empty"),
        CheckConstraint("label IS NULL OR length(label) > 0", name="label_not_empty"),
        CheckConstraint(f"length(scopes) > 0 AND length(scopes) <= {SCOPES_MAX}", name="scopes_length"),
        Index(None, "client"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    public_id: str = Field(sa_column=Column(String(API_KEY_ID_LENGTH), nullable=False))
    key_hash: str = Field(sa_column=Column(String(64), nullable=False))
    client: str = Field(sa_column=Column(String(CLIENT_MAX), nullable=False))
    label: str | None = Field(default=None, sa_column=Column(String(NAME_MAX), nullable=True))
    scopes: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    """Recorded at most once a minute per key and gateway process (a write per request would be a hot spot)."""
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class AuditOutcome(StrEnum):
    """How a mutation ended, as the audit log records it."""

    OK = "OK"
    USER_ERRORS = "USER_ERRORS"
    """It answered with `userErrors` (their codes are recorded)."""
    ERROR = "ERROR"
    """It raised: a GraphQL error with the recorded code."""
    FORBIDDEN = "FORBIDDEN"
    """The principal was not allowed to run it."""


AUDIT_ACTOR_MAX = 255
AUDIT_MUTATION_MAX = 100


class AuditEvent(Base, table=True):
    """One mutation a principal ran (or tried to): who, which mutation on what, when, and how it ended.

    Never personal data or secrets: the actor is the principal's kind and subject (a token's `sub`, or
    ``apikey:<public id>``), targets are global IDs, codes are error codes. Written by the gateway's audit
    extension in a transaction of its own after the mutation (see `schema/audit/extension.py`).
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        CheckConstraint(f"outcome IN ({_one_of(AuditOutcome)})", name="outcome_known"),
        CheckConstraint("length(mutation) > 0", name="mutation_not_empty"),
        Index(None, "created_at"),
        Index(None, "actor", "id"),
        Index(None, "mutation", "id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    """When the mutation started."""
    actor_kind: str = Field(sa_column=Column(String(16), nullable=False))
    actor: str | None = Field(default=None, sa_column=Column(String(AUDIT_ACTOR_MAX), nullable=True))
    """The principal's subject; null when anonymous."""
    mutation: str = Field(sa_column=Column(String(AUDIT_MUTATION_MAX), nullable=False))
    operation_name: str | None = Field(default=None, sa_column=Column(String(NAME_MAX), nullable=True))
    targets: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    """Space-separated global IDs of the objects it named or returned."""
    outcome: AuditOutcome = Field(sa_column=Column(String(16), nullable=False))
    codes: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    """Space-separated error codes: the userErrors' for USER_ERRORS, the GraphQL error's for ERROR/FORBIDDEN."""
