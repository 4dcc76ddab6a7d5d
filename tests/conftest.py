"""Shared fixtures: real SQLite and PostgreSQL stores (migrated by Alembic), the app, and a SQL counter.

PostgreSQL: one database per test run (``gw_test_<random>`` on 127.0.0.1:5432, or ``TEST_POSTGRES_URL``),
dropped at the end. Tables are emptied before each test that uses a store. Under ``CI=true`` a missing
PostgreSQL fails the tests that need it; locally they skip with the reason.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.auth.tokens import issue_token
from gateway.settings import Settings, load_settings
from integrations.store import migrate
from integrations.store.engine import create_engine, create_sessionmaker
from integrations.store.session import StoreSession
from integrations.store.statements import observe_statements
from tests.support.localstripe import LocalStripe, run_localstripe
from tests.support.services import unavailable

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TABLES = (
    "api_key",
    "trusted_document",
    "client_policy",
    "webhook_event",
    "local_refund",
    "local_payment_intent",
    "email_outbox",
    "payment",
    "idempotency_record",
    "order_line",
    "order",
    "product",
    "customer",
)
BACKENDS = ("sqlite", "postgresql")
SETTING_NAMES = frozenset(str(field.alias) for field in Settings.model_fields.values() if field.alias)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("store") / "gateway.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """A database of its own for this test run, migrated to head, dropped afterwards."""
    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(postgres_admin_execute(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable(f"PostgreSQL not reachable at {make_url(POSTGRES_ADMIN_URL).render_as_string()}: {exc}")
    url = postgres_url(name)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(postgres_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def postgres_admin_execute(sql: str) -> None:
    """Run `sql` (CREATE/DROP DATABASE) on the administrative connection."""
    admin = make_url(POSTGRES_ADMIN_URL)
    connection = await asyncpg.connect(
        host=admin.host,
        port=admin.port or 5432,
        user=admin.username,
        password=admin.password,
        database=admin.database,
        timeout=5,
    )
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def postgres_url(database: str) -> str:
    """The asyncpg URL of `database` on the test server."""
    admin = make_url(POSTGRES_ADMIN_URL)
    return admin.set(drivername="postgresql+asyncpg", database=database).render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs twice: against SQLite and against PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


async def empty_tables(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                quoted = ", ".join(f'"{t}"' for t in TABLES)
                await connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
            else:
                for table in TABLES:
                    await connection.execute(text(f'DELETE FROM "{table}"'))
                await connection.execute(text("DELETE FROM sqlite_sequence"))  # restart ids, like RESTART IDENTITY
    finally:
        await engine.dispose()


@pytest.fixture
async def store_url(database_url: str) -> str:
    """A migrated, empty store on each backend."""
    await empty_tables(database_url)
    return database_url


@pytest.fixture
async def engine(store_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(store_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def store(engine: AsyncEngine) -> AsyncIterator[StoreSession]:
    session = StoreSession(create_sessionmaker(engine))
    yield session
    await session.close()


class StatementCounter:
    """Counts the SQL statements an engine runs, through SQLAlchemy or directly (`observe_statements`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statements: list[str] = []
        self.stop = observe_statements(engine, self._record)

    def _record(self, statement: str, _seconds: float, _error: BaseException | None) -> None:
        self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)

    def reset(self) -> None:
        self.statements.clear()


ANONYMOUS = {"Authorization": ""}
"""Headers for a request without credentials through a `GraphQLClient` (which sends an admin token)."""


def token_for(
    settings: Settings, *, subject: str = "test-admin", roles: Sequence[str] = ("admin",), **claims: Any
) -> str:
    """A bearer token the app built from `settings` accepts (HS256 with its secret, issuer and audience)."""
    return issue_token(
        settings.jwt_secret.get_secret_value(),
        subject=subject,
        roles=roles,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        **claims,
    )


class GraphQLClient:
    """The real app in process, over httpx's ASGI transport, acting as an admin unless told otherwise."""

    def __init__(self, app: Starlette, http: httpx.AsyncClient) -> None:
        self.app = app
        self.http = http
        self.sql = StatementCounter(app.state.engine)
        self.settings: Settings = app.state.settings

    async def count(self, model: type[Any]) -> int:
        """Rows of `model`'s table in the app's store."""
        async with self.app.state.engine.connect() as connection:
            return int((await connection.execute(select(func.count()).select_from(model))).scalar_one())

    async def post(
        self,
        query: str,
        variables: dict[str, object] | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: object,
    ) -> httpx.Response:
        body = {"query": query, "variables": variables, **extra}
        return await self.http.post("/graphql", json=body, headers=headers)

    async def execute(self, query: str, variables: dict[str, object] | None = None) -> dict[str, Any]:
        """Run an operation that must succeed; return its `data`."""
        response = await self.post(query, variables)
        body = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body["errors"]
        data = body["data"]
        assert isinstance(data, dict)
        return data


@asynccontextmanager
async def serve_in_process(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """The real app (lifespan included) behind httpx's ASGI transport."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport,
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {token_for(settings)}"},
        ) as http,
    ):
        yield GraphQLClient(app, http)


def app_settings_for(store_url: str, tmp_path: Path, **overrides: object) -> Settings:
    """Settings for an in-process app: this test's store, mail to a temporary directory, no outbox worker."""
    values: dict[str, object] = {
        "DATABASE_URL": store_url,
        "EMAIL_URL": f"file://{tmp_path / 'mail'}",
        "GATEWAY_EMAIL_WORKER": False,
        "_env_file": None,
    }
    return load_settings(**(values | overrides))


@pytest.fixture(autouse=True)
def _no_ambient_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests configure the app explicitly; the developer's environment must not leak in."""
    for name in SETTING_NAMES & set(os.environ):
        monkeypatch.delenv(name, raising=False)
    # On by default in development; tests compare whole answers, and the cost tests turn it back on.
    monkeypatch.setenv("GATEWAY_COST_EXTENSION", "false")


@pytest.fixture
async def client(store_url: str, tmp_path: Path) -> AsyncIterator[GraphQLClient]:
    async with serve_in_process(app_settings_for(store_url, tmp_path)) as client:
        yield client


@pytest.fixture
def redis_url() -> str:
    """The shared Redis on 127.0.0.1:6379; tests keep to a random key prefix of their own."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError as exc:
        unavailable(f"Redis not reachable at 127.0.0.1:6379: {exc}")
    return "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def localstripe() -> Iterator[LocalStripe]:
    """One localstripe process for the whole run (tests tell their payments apart by metadata or id)."""
    with run_localstripe() as server:
        yield server


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parent.parent
