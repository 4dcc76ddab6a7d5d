"""Partner API keys in the store: create, list, revoke, and the cached request-time verification."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from integrations.errors import ErrorCode, UserInputError
from integrations.store.changes import ChangeFeed
from integrations.store.engine import create_sessionmaker
from integrations.store.models import metadata
from resolvers.access.api_keys import (
    ApiKeys,
    CreatedApiKey,
    UnknownApiKeyError,
    check_scopes,
    create_api_key,
    list_api_keys,
    new_key,
    public_id_of,
    revoke_api_key,
)
from resolvers.access.principal import Principal, PrincipalKind
from tests.conftest import StatementCounter

KEY_FORMAT = re.compile(r"gwk_[0-9a-f]{12}_[0-9A-Za-z]{43}")
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    """Both clocks ApiKeys reads: monotonic seconds (cache and throttle) and the wall clock (`last_used_at`)."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.seconds - 1000.0)

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def api_keys(sessionmaker: async_sessionmaker[AsyncSession], clock: Clock) -> AsyncIterator[ApiKeys]:
    api_keys = ApiKeys(sessionmaker, ttl=5.0, touch_interval=60.0, clock=clock, now=clock.now)
    yield api_keys
    await api_keys.drain()  # uses are written before the engine is disposed


def key_queries(sql: StatementCounter) -> list[str]:
    return [s for s in sql.statements if "api_key" in s]


def lookups(sql: StatementCounter) -> list[str]:
    """The request-time lookups of a key by its public id."""
    return [s for s in sql.statements if s.lstrip().startswith("SELECT api_key.key_hash")]


def writes(sql: StatementCounter) -> list[str]:
    return [s for s in sql.statements if s.lstrip().startswith("UPDATE api_key")]


async def stored_row(engine: AsyncEngine, public_id: str) -> dict[str, object]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(metadata.tables["api_key"]).where(metadata.tables["api_key"].c.public_id == public_id)
            )
        ).one()
    return dict(row._mapping)


async def test_a_created_key_is_returned_once_and_only_its_hash_is_stored(
    sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    created = await create_api_key(sessionmaker, "acme", "products:read orders:read products:read", label="CI")
    key, record = created.key, created.record

    assert KEY_FORMAT.fullmatch(key)
    assert key.startswith(f"gwk_{record.public_id}_")
    assert (record.client, record.label, record.scopes) == ("acme", "CI", ("orders:read", "products:read"))
    assert record.last_used_at is None
    assert record.revoked_at is None
    assert key not in repr(created)  # a log line or traceback never shows it

    row = await stored_row(engine, record.public_id)
    secret = key.rsplit("_", 1)[1]
    for value in row.values():
        assert key not in str(value)
        assert secret not in str(value)
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert row["scopes"] == "orders:read products:read"


async def test_keys_are_random_and_well_formed() -> None:
    keys = {new_key() for _ in range(200)}
    assert len({public_id for public_id, _ in keys}) == len({key for _, key in keys}) == 200
    for public_id, key in keys:
        assert KEY_FORMAT.fullmatch(key)
        assert public_id_of(key) == public_id


@pytest.mark.parametrize(
    "key",
    [
        "",
        "gwk_",
        "gwk_abc_def",
        "GWK_0123456789ab_" + "a" * 43,
        "gwk_0123456789AB_" + "a" * 43,
        "gwk_0123456789ab_" + "a" * 42,
        "gwk_0123456789ab_" + "a" * 44,
        "gwk_0123456789ab_" + "a" * 42 + "-",
        " gwk_0123456789ab_" + "a" * 43,
    ],
)
def test_malformed_keys_have_no_public_id(key: str) -> None:
    assert public_id_of(key) is None


async def test_a_valid_key_is_a_partner_principal_of_its_client(
    sessionmaker: async_sessionmaker[AsyncSession], api_keys: ApiKeys
) -> None:
    created = await create_api_key(sessionmaker, "acme", "orders:read products:read")
    principal = await api_keys.principal(created.key)

    assert principal == Principal(
        PrincipalKind.API_KEY,
        subject=f"apikey:{created.record.public_id}",
        roles=frozenset({"partner"}),
        scopes=frozenset({"orders:read", "products:read"}),
        client="acme",
    )
    assert principal.has("orders:read")
    assert not principal.has("customers:read")


async def test_wrong_unknown_and_malformed_keys_are_refused(
    sessionmaker: async_sessionmaker[AsyncSession], api_keys: ApiKeys, engine: AsyncEngine
) -> None:
    created = await create_api_key(sessionmaker, "acme", "orders:read")
    key = created.key
    wrong_secret = key[:-1] + ("A" if key[-1] != "A" else "B")
    other_id = new_key()[1]

    sql = StatementCounter(engine)
    assert await api_keys.principal(wrong_secret) is None
    assert await api_keys.principal(other_id) is None
    assert len(lookups(sql)) == 2
    sql.reset()
    assert await api_keys.principal("gwk_nonsense") is None
    assert await api_keys.principal(key + "x") is None
    assert await api_keys.principal("Bearer " + key) is None
    assert key_queries(sql) == []  # malformed: refused without a query
    assert await api_keys.principal(key) is not None


async def test_hashes_are_compared_in_constant_time(
    sessionmaker: async_sessionmaker[AsyncSession], api_keys: ApiKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await create_api_key(sessionmaker, "acme", "orders:read")
    stored = hashlib.sha256(created.key.encode()).hexdigest()
    wrong = created.key[:-1] + ("A" if created.key[-1] != "A" else "B")
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert await api_keys.principal(created.key) is not None
    assert await api_keys.principal(wrong) is None
    assert await api_keys.principal(new_key()[1]) is None  # an unknown id takes the same path

    assert compared[0] == (stored, stored)
    assert compared[1] == (hashlib.sha256(wrong.encode()).hexdigest(), stored)
    assert len(compared) == 3


async def test_verified_and_unknown_keys_are_cached_for_the_ttl(
    sessionmaker: async_sessionmaker[AsyncSession], api_keys: ApiKeys, clock: Clock, engine: AsyncEngine
) -> None:
    created = await create_api_key(sessionmaker, "acme", "orders:read")
    unknown = new_key()[1]
    sql = StatementCounter(engine)

    assert await api_keys.principal(created.key) is not None
    assert await api_keys.principal(unknown) is None
    await api_keys.drain()
    sql.reset()
    for _ in range(5):
        assert await api_keys.principal(created.key) is not None
        assert await api_keys.principal(unknown) is None
    assert key_queries(sql) == []  # answered from the cache

    await revoke_api_key(sessionmaker, created.record.public_id)  # e.g. by the CLI, in another process
    clock.advance(4.9)
    assert await api_keys.principal(created.key) is not None  # still within the ttl: accepted
    clock.advance(0.2)
    assert await api_keys.principal(created.key) is None  # the ttl passed: the revoke took effect
    assert await api_keys.principal(unknown) is None
    assert len(lookups(sql)) == 2


async def test_forget_drops_a_cached_key_at_once(
    sessionmaker: async_sessionmaker[AsyncSession], api_keys: ApiKeys
) -> None:
    created = await create_api_key(sessionmaker, "acme", "orders:read")
    assert await api_keys.principal(created.key) is not None
    await revoke_api_key(sessionmaker, created.record.public_id)
    api_keys.forget(created.record.public_id)
    assert await api_keys.principal(created.key) is None


async def test_concurrent_first_requests_share_one_lookup(
    sessionmaker: async_sessionmaker[AsyncSession], api_keys: ApiKeys, engine: AsyncEngine
) -> None:
    created = await create_api_key(sessionmaker, "acme", "orders:read")
    sql = StatementCounter(engine)
    principals = await asyncio.gather(*(api_keys.principal(created.key) for _ in range(20)))
    assert all(p is not None and p.client == "acme" for p in principals)
    assert len(lookups(sql)) == 1
    await api_keys.drain()


async def test_last_use_is_written_in_the_background_at_most_once_a_minute(
    sessionmaker: async_sessionmaker[AsyncSession], api_keys: ApiKeys, clock: Clock, engine: AsyncEngine
) -> None:
    created = await create_api_key(sessionmaker, "acme", "orders:read")
    public_id = created.record.public_id
    sql = StatementCounter(engine)

    assert await api_keys.principal(created.key) is not None
    assert writes(sql) == []  # the request did not wait for the write
    await api_keys.drain()
    assert (await stored_row(engine, public_id))["last_used_at"] == T0

    sql.reset()
    for _ in range(10):  # within the minute: no writes, and (ttl 5 s) at most a cache refill now and then
        clock.advance(5.9)
        assert await api_keys.principal(created.key) is not None
    await api_keys.drain()
    assert writes(sql) == []
    assert (await stored_row(engine, public_id))["last_used_at"] == T0

    clock.advance(1.0)  # 60 s after the recorded use
    assert await api_keys.principal(created.key) is not None
    await api_keys.drain()
    assert len(writes(sql)) == 1
    assert (await stored_row(engine, public_id))["last_used_at"] == T0 + timedelta(seconds=60)
    [listed] = await list_api_keys(sessionmaker)
    assert listed.last_used_at == T0 + timedelta(seconds=60)


async def test_a_last_use_write_announces_no_change(engine: AsyncEngine, clock: Clock) -> None:
    """No answer shows a key's last use, and every announced change empties every instance's near cache."""
    feed = ChangeFeed()
    heard: list[frozenset[str]] = []

    async def listen(tags: frozenset[str]) -> None:
        heard.append(tags)

    feed.listen(listen)
    tracked_sessions = create_sessionmaker(engine, changes=feed)
    created = await create_api_key(tracked_sessions, "acme", "orders:read")
    await feed.drain()
    assert heard  # creating a key is announced, as every write is
    heard.clear()
    api_keys = ApiKeys(tracked_sessions, ttl=5.0, touch_interval=60.0, clock=clock, now=clock.now)
    assert await api_keys.principal(created.key) is not None
    await api_keys.drain()
    await feed.drain()
    assert (await stored_row(engine, created.record.public_id))["last_used_at"] == T0
    assert heard == []


async def test_last_use_never_moves_backwards(sessionmaker: async_sessionmaker[AsyncSession], clock: Clock) -> None:
    """Gateways write their uses independently; an older one arriving late does not overwrite a newer one."""
    created = await create_api_key(sessionmaker, "acme", "orders:read")
    newer = ApiKeys(sessionmaker, clock=clock, now=lambda: T0 + timedelta(hours=1))
    older = ApiKeys(sessionmaker, clock=clock, now=lambda: T0)
    await newer.principal(created.key)
    await newer.drain()
    await older.principal(created.key)
    await older.drain()
    [listed] = await list_api_keys(sessionmaker)
    assert listed.last_used_at == T0 + timedelta(hours=1)


class Breakable:
    """A sessionmaker whose sessions can no longer be opened once `broken` (the database went away)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self.kw = sessionmaker.kw  # its engine, as the real one gives it
        self.broken = False

    def __call__(self) -> AsyncSession:
        if self.broken:
            raise ConnectionRefusedError("the database went away")
        return self.sessionmaker()


async def test_a_failed_last_use_write_is_logged_and_the_request_unharmed(
    sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    created = await create_api_key(sessionmaker, "acme", "orders:read")
    breakable = Breakable(sessionmaker)
    api_keys = ApiKeys(breakable, clock=clock, now=clock.now)  # type: ignore[arg-type]
    assert await api_keys.principal(created.key) is not None  # looked up and cached; its use queued
    breakable.broken = True
    await api_keys.drain()
    assert "could not record the last use of 1 API key(s)" in caplog.text
    assert await api_keys.principal(created.key) is not None  # still served from the cache


async def test_list_keys_per_client_or_all_without_hashes(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    first = await create_api_key(sessionmaker, "beta", "orders:read")
    second = await create_api_key(sessionmaker, "acme", "products:read", label="shop front")
    third = await create_api_key(sessionmaker, "acme", "orders:read")

    everything = await list_api_keys(sessionmaker)
    assert [k.public_id for k in everything] == [r.record.public_id for r in (second, third, first)]
    assert [k.public_id for k in await list_api_keys(sessionmaker, "acme")] == [
        second.record.public_id,
        third.record.public_id,
    ]
    assert await list_api_keys(sessionmaker, "nobody") == []
    assert everything[0] == second.record
    for listed in everything:
        assert not any("gwk_" in str(value) for value in vars(listed).values())
        assert "hash" not in " ".join(vars(listed))


async def test_revoke_is_idempotent_and_refuses_unknown_ids(
    sessionmaker: async_sessionmaker[AsyncSession], api_keys: ApiKeys
) -> None:
    created = await create_api_key(sessionmaker, "acme", "orders:read")
    public_id = created.record.public_id

    first = await revoke_api_key(sessionmaker, public_id)
    again = await revoke_api_key(sessionmaker, public_id)
    assert first.already is False
    assert again.already is True
    assert first.record.revoked_at is not None
    assert again.record.revoked_at == first.record.revoked_at  # not moved by revoking again
    assert again.record.revoked
    assert await api_keys.principal(created.key) is None

    for unknown in ("000000000000", "nope", "x" * 500):
        with pytest.raises(UnknownApiKeyError, match="no API key with id"):
            await revoke_api_key(sessionmaker, unknown)
    with pytest.raises(UserInputError) as whole_key:
        await revoke_api_key(sessionmaker, created.key)
    assert whole_key.value.message == f"give the key's id ({public_id}), not the key itself"


@pytest.mark.parametrize(
    ("client", "scopes", "label", "field", "message"),
    [
        ("", "orders:read", None, "client", "client must not be empty"),
        (" acme", "orders:read", None, "client", "surrounding whitespace"),
        ("x" * 101, "orders:read", None, "client", "at most 100 characters"),
        ("acme", "", None, "scopes", "at least one scope"),
        ("acme", "   ", None, "scopes", "at least one scope"),
        ("acme", "orders", None, "scopes", "invalid scope 'orders'"),
        ("acme", "orders:read Products:read", None, "scopes", "invalid scope 'Products:read'"),
        ("acme", "orders:read orders:", None, "scopes", "invalid scope 'orders:'"),
        ("acme", "orders:read", "", "label", "label must not be empty"),
        ("acme", "orders:read", "a\nb", "label", "control characters"),
        ("acme", "orders:read", "x" * 201, "label", "at most 200 characters"),
    ],
)
async def test_invalid_input_stores_nothing(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: str,
    scopes: str,
    label: str | None,
    field: str,
    message: str,
) -> None:
    with pytest.raises(UserInputError, match=re.escape(message)) as refused:
        await create_api_key(sessionmaker, client, scopes, label=label)
    assert refused.value.field == field
    assert await list_api_keys(sessionmaker) == []


def test_scopes_are_deduplicated_and_sorted_and_limited() -> None:
    assert check_scopes("products:read  orders:read\torders:read") == ("orders:read", "products:read")
    assert check_scopes(["orders:read", "customers:read orders:write"]) == (
        "customers:read",
        "orders:read",
        "orders:write",
    )
    assert check_scopes("orders:read:own partner-api:use") == ("orders:read:own", "partner-api:use")
    with pytest.raises(UserInputError) as too_long:
        check_scopes(" ".join(f"scope{i}:read" for i in range(300)))
    assert too_long.value.code is ErrorCode.TOO_LONG


def test_a_created_key_is_not_in_its_repr() -> None:
    _, key = new_key()
    assert key not in repr(CreatedApiKey(key, record=None))  # type: ignore[arg-type]
