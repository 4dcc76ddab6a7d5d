"""Partner API keys: create one (the key is shown once), list, revoke, and verify keys at request time.

A key is ``gwk_<public id>_<secret>``: 12 lower-case hex digits that find its row, then 43 base62 characters
(256 random bits; base62 so a key is one word to double-click or grep). Only the SHA-256 of the whole key is
stored. A plain hash is enough because the key is random: there is no guessable password behind the hash to
brute-force. Hashes are compared with `hmac.compare_digest`.

`ApiKeys.principal(key)` is the request-time check. What it read for a public id (hash, client, scopes, revoked
or not, or that there is no such key) is kept in process for `ttl` seconds (30 by default), so a request with a
known key costs one SHA-256 and no SQL. **A revoke therefore takes effect within `ttl` seconds** on every
running gateway (at once in the process that calls `ApiKeys.forget`). Each use is written to `last_used_at` at
most once per `touch_interval` (60 s) per key and process, by a background task on a session of its own: the
request neither waits for that write nor lends it its connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import string
import time
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from integrations.errors import ErrorCode, NotFoundError, UserInputError
from integrations.store.changes import UNANNOUNCED
from integrations.store.models import API_KEY_ID_LENGTH, NAME_MAX, SCOPES_MAX, ApiKey
from integrations.store.session import StoreSession
from integrations.store.types import utcnow
from resolvers.access.principal import PARTNER, Principal, PrincipalKind
from resolvers.expiring_lru import ExpiringLRU
from resolvers.trusted_documents import check_client

logger = logging.getLogger("resolvers.access.api_keys")

Sessionmaker = async_sessionmaker[AsyncSession]
KEY_PREFIX = "gwk_"
"""What every key starts with: the gateway's authenticator routes `Authorization: Bearer gwk_...` by it."""
CACHE_TTL = 30.0
"""Seconds a gateway process trusts what it read about a key: a revoke takes effect within this time."""
SECRET_LENGTH = 43
"""Base62 characters after the public id: 43 * log2(62) = 256.03 bits."""
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_KEY = re.compile(f"{KEY_PREFIX}([0-9a-f]{{{API_KEY_ID_LENGTH}}})_([0-9A-Za-z]{{{SECRET_LENGTH}}})")
_SCOPE = re.compile(r"[a-z][a-z0-9_-]*(?::[a-z][a-z0-9_-]*)+")
"""`resource:action`: lower-case words joined by colons, as bearer tokens carry them (`orders:read`)."""


@dataclass(frozen=True)
class ApiKeyRecord:
    """What may be shown about a key: never the key, never its hash."""

    public_id: str
    client: str
    label: str | None
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class CreatedApiKey:
    key: str = field(repr=False)
    """The key itself: handed to its owner once, never stored, never shown again."""
    record: ApiKeyRecord


@dataclass(frozen=True)
class RevokedApiKey:
    record: ApiKeyRecord
    already: bool
    """The key was revoked before (this call changed nothing)."""


class UnknownApiKeyError(NotFoundError):
    def __init__(self, public_id: str) -> None:
        super().__init__(f"no API key with id {public_id!r} (`gateway apikey list` shows the ids)")
        self.public_id = public_id


def new_key() -> tuple[str, str]:
    """A fresh (public id, key) pair from the system's CSPRNG."""
    public_id = secrets.token_hex(API_KEY_ID_LENGTH // 2)
    secret = "".join(secrets.choice(_BASE62) for _ in range(SECRET_LENGTH))
    return public_id, f"{KEY_PREFIX}{public_id}_{secret}"


def public_id_of(key: str) -> str | None:
    """The public id of a well-formed key; None for anything else (which then costs no SQL)."""
    match = _KEY.fullmatch(key)
    return match.group(1) if match else None


def key_hash(key: str) -> str:
    """What is stored of a key: its SHA-256, as 64 lower-case hex digits."""
    return hashlib.sha256(key.encode()).hexdigest()


def check_scopes(scopes: str | Iterable[str]) -> tuple[str, ...]:
    """Scopes as stored: at least one, each `resource:action`, without duplicates, sorted."""
    names = scopes.split() if isinstance(scopes, str) else [name for part in scopes for name in part.split()]
    if not names:
        raise UserInputError("scopes", 'give at least one scope, e.g. "orders:read"', code=ErrorCode.REQUIRED)
    if invalid := [name for name in names if not _SCOPE.fullmatch(name)]:
        raise UserInputError(
            "scopes",
            f"invalid scope {', '.join(map(repr, invalid))}: "
            "a scope is lower-case words joined by colons, e.g. orders:read",
        )
    unique = tuple(sorted(set(names)))
    if len(" ".join(unique)) > SCOPES_MAX:
        raise UserInputError("scopes", f"scopes must be at most {SCOPES_MAX} characters", code=ErrorCode.TOO_LONG)
    return unique


def check_label(label: str | None) -> str | None:
    """A label as stored: None, or 1 to 200 characters without control characters or surrounding whitespace."""
    if label is None:
        return None
    if not label:
        raise UserInputError("label", "label must not be empty (leave it out instead)", code=ErrorCode.REQUIRED)
    if len(label) > NAME_MAX:
        raise UserInputError("label", f"label must be at most {NAME_MAX} characters", code=ErrorCode.TOO_LONG)
    if label != label.strip() or any(unicodedata.category(ch) == "Cc" for ch in label):
        raise UserInputError("label", "label must not contain control characters or surrounding whitespace")
    return label


async def create_api_key(
    sessionmaker: Sessionmaker, client: str, scopes: str | Iterable[str], *, label: str | None = None
) -> CreatedApiKey:
    """Store a new key for `client` and return it: the only time the key itself is available.

    Raises `UserInputError` for an invalid client name, scope or label; nothing is stored then.
    """
    client = check_client(client)
    granted = check_scopes(scopes)
    label = check_label(label)
    for attempt in (1, 2, 3):
        public_id, key = new_key()
        row = ApiKey(public_id=public_id, key_hash=key_hash(key), client=client, label=label, scopes=" ".join(granted))
        try:
            async with _store(sessionmaker) as store, store.transaction() as session:
                session.add(row)
        except IntegrityError:
            if attempt == 3:  # 48-bit ids: a collision is rare, three in a row are something else
                raise
            continue
        return CreatedApiKey(key, _record(row))
    raise AssertionError("unreachable")


_LISTED = (
    col(ApiKey.public_id),
    col(ApiKey.client),
    col(ApiKey.label),
    col(ApiKey.scopes),
    col(ApiKey.created_at),
    col(ApiKey.last_used_at),
    col(ApiKey.revoked_at),
)


async def list_api_keys(sessionmaker: Sessionmaker, client: str | None = None) -> list[ApiKeyRecord]:
    """Every key (or `client`'s), revoked ones included, by client and creation; the hashes are not even read."""
    statement = select(*_LISTED).order_by(col(ApiKey.client), col(ApiKey.created_at), col(ApiKey.id))
    if client is not None:
        statement = statement.where(col(ApiKey.client) == client)
    async with _store(sessionmaker) as store:
        rows = await store.rows(statement)
    return [_record(row) for row in rows]


async def revoke_api_key(sessionmaker: Sessionmaker, public_id: str) -> RevokedApiKey:
    """Revoke the key with this public id. Revoking a revoked key changes nothing (not even its `revoked_at`).
    Raises `UnknownApiKeyError` when there is no such key.

    Gateways that verified the key within their cache's `ttl` keep accepting it until that entry expires.
    """
    if (embedded := public_id_of(public_id)) is not None:  # a whole key: name its id, and never echo the secret
        raise UserInputError("id", f"give the key's id ({embedded}), not the key itself")
    ours = col(ApiKey.public_id) == public_id
    async with _store(sessionmaker) as store, store.transaction() as session:
        revoked = await session.execute(
            update(ApiKey)
            .where(ours, col(ApiKey.revoked_at).is_(None))
            .values(revoked_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        row = (await session.execute(select(*_LISTED).where(ours))).first()
        if row is None:
            raise UnknownApiKeyError(public_id)
        return RevokedApiKey(_record(row), already=getattr(revoked, "rowcount", 0) == 0)


@dataclass(frozen=True)
class _Known:
    """What the store said about a public id: the hash to compare with, and who the key is (None: revoked)."""

    key_hash: str
    principal: Principal | None


_NO_SUCH_KEY = _Known(key_hash="0" * 64, principal=None)
"""Cached for ids without a row; still compared against, so every well-formed key takes the same path."""


class ApiKeys:
    """Request-time verification of API keys (the gateway's `ApiKeyPrincipals`), cached in process.

    Concurrent first requests with one key share a single query. `drain()` waits for recorded uses to be written.
    """

    def __init__(
        self,
        sessionmaker: Sessionmaker,
        *,
        ttl: float = CACHE_TTL,
        touch_interval: float = 60.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._touch_interval = touch_interval
        self._max_entries = max_entries
        self._clock = clock
        self._now = now
        self._known: ExpiringLRU[str, _Known] = ExpiringLRU(ttl, max_entries, clock)
        self._flights: dict[str, asyncio.Task[_Known]] = {}
        self._generation = 0
        """Bumped by `forget`/`clear`, so a lookup started before them does not cache what it read."""
        self._touched: dict[str, float] = {}
        """When (on `clock`) each key's last use was queued for writing."""
        self._uses: dict[str, datetime] = {}
        self._writer: asyncio.Task[None] | None = None

    async def principal(self, key: str) -> Principal | None:
        """The partner a key acts for; None for a malformed, unknown or revoked key (or a wrong secret)."""
        public_id = public_id_of(key)
        if public_id is None:
            return None
        known = await self._lookup(public_id)
        if not hmac.compare_digest(key_hash(key), known.key_hash) or known.principal is None:
            return None
        self._record_use(public_id)
        return known.principal

    def forget(self, public_id: str) -> None:
        """Drop what is cached about one key (after revoking it in this process)."""
        self._known.pop(public_id)
        self._generation += 1

    def clear(self) -> None:
        self._known.clear()
        self._generation += 1

    async def drain(self) -> None:
        """Wait until every recorded use is written (at shutdown, and in tests)."""
        while self._writer is not None and not self._writer.done():
            await self._writer

    async def _lookup(self, public_id: str) -> _Known:
        found, known = self._known.get(public_id)
        if found:
            assert known is not None
            return known
        flight = self._flights.get(public_id)
        if flight is None:
            # A task of its own: a request cancelled mid-lookup neither fails the others nor wastes the query.
            flight = asyncio.get_running_loop().create_task(self._load(public_id, self._generation))
            self._flights[public_id] = flight
            flight.add_done_callback(lambda done: self._landed(public_id, done))
        return await asyncio.shield(flight)

    async def _load(self, public_id: str, generation: int) -> _Known:
        statement = select(col(ApiKey.key_hash), col(ApiKey.client), col(ApiKey.scopes), col(ApiKey.revoked_at)).where(
            col(ApiKey.public_id) == public_id
        )
        async with _store(self._sessionmaker) as store:
            rows = await store.rows(statement)
        known = _NO_SUCH_KEY
        if rows:
            stored_hash, client, scopes, revoked_at = rows[0]
            principal = Principal(
                PrincipalKind.API_KEY,
                subject=f"apikey:{public_id}",
                roles=frozenset({PARTNER}),
                scopes=frozenset(scopes.split()),
                client=client,
            )
            known = _Known(stored_hash, None if revoked_at is not None else principal)
        if generation == self._generation:
            self._known.put(public_id, known)
        return known

    def _landed(self, public_id: str, flight: asyncio.Task[_Known]) -> None:
        if self._flights.get(public_id) is flight:
            del self._flights[public_id]
        if not flight.cancelled():
            flight.exception()  # retrieved: its waiters, if any are left, raise it themselves

    def _record_use(self, public_id: str) -> None:
        """Queue a write of `last_used_at`, unless this process queued one for the key within `touch_interval`."""
        now = self._clock()
        last = self._touched.get(public_id)
        if last is not None and now - last < self._touch_interval:
            return
        if len(self._touched) >= self._max_entries:
            self._touched = {i: t for i, t in self._touched.items() if now - t < self._touch_interval}
        self._touched[public_id] = now
        self._uses[public_id] = self._now()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_uses())

    async def _write_uses(self) -> None:
        while self._uses:
            batch, self._uses = self._uses, {}
            try:
                async with _store(self._sessionmaker) as store, store.transaction() as session:
                    for public_id, used_at in sorted(batch.items()):  # one lock order for every process
                        last_used = col(ApiKey.last_used_at)
                        await session.execute(
                            update(ApiKey)
                            .where(col(ApiKey.public_id) == public_id, or_(last_used.is_(None), last_used < used_at))
                            .values(last_used_at=used_at)
                            .execution_options(synchronize_session=False, **UNANNOUNCED)
                        )
            except Exception:
                logger.warning("could not record the last use of %d API key(s)", len(batch), exc_info=True)


def _record(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        public_id=row.public_id,
        client=row.client,
        label=row.label,
        scopes=tuple(row.scopes.split()),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


@asynccontextmanager
async def _store(sessionmaker: Sessionmaker) -> AsyncIterator[StoreSession]:
    store = StoreSession(sessionmaker)
    try:
        yield store
    finally:
        await store.close()
