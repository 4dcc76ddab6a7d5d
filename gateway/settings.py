"""Configuration from the environment and `.env`, read once here and handed down as arguments."""

from __future__ import annotations

from email.utils import parseaddr
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./gateway.db"
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}
_SUPPORTED = {"sqlite+aiosqlite", "postgresql+asyncpg"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field(DEFAULT_DATABASE_URL, alias="DATABASE_URL")
    redis_url: str | None = Field(None, alias="REDIS_URL")
    env: Literal["development", "production"] = Field("development", alias="GATEWAY_ENV")
    host: str = Field("127.0.0.1", alias="GATEWAY_HOST", min_length=1)
    port: int = Field(8000, alias="GATEWAY_PORT", ge=1, le=65535)
    db_pool_size: int = Field(10, alias="GATEWAY_DB_POOL_SIZE", ge=1, le=500)
    max_body_bytes: int = Field(100_000, alias="GATEWAY_MAX_BODY_BYTES", ge=1_000)
    document_cache_size: int = Field(1_000, alias="GATEWAY_DOCUMENT_CACHE_SIZE", ge=0)
    graphiql: bool | None = Field(None, alias="GATEWAY_GRAPHIQL", description="default: on in development only")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", alias="GATEWAY_LOG_LEVEL")

    cache_prefix: str = Field("gw:", alias="GATEWAY_CACHE_PREFIX", max_length=64)
    apq: bool = Field(True, alias="GATEWAY_APQ", description="accept automatic persisted queries")
    apq_ttl: float = Field(7 * 24 * 3600, alias="GATEWAY_APQ_TTL", gt=0)
    client_header: str = Field("X-Client-Name", alias="GATEWAY_CLIENT_HEADER", pattern=r"^[A-Za-z0-9-]{1,64}$")
    trusted_documents_only: bool = Field(
        False, alias="GATEWAY_TRUSTED_DOCUMENTS_ONLY", description="every client may run only trusted documents"
    )
    trusted_documents_ttl: float = Field(30.0, alias="GATEWAY_TRUSTED_DOCUMENTS_TTL", ge=0, le=3600)
    response_cache: bool = Field(True, alias="GATEWAY_RESPONSE_CACHE", description="cache query results")
    response_cache_entries: int = Field(10_000, alias="GATEWAY_RESPONSE_CACHE_ENTRIES", ge=1)
    cache_default_max_age: int = Field(0, alias="GATEWAY_CACHE_DEFAULT_MAX_AGE", ge=0, le=86_400)
    cache_swr: float = Field(0.0, alias="GATEWAY_CACHE_SWR", ge=0, le=86_400)

    # Payments: the embedded `local` ledger by default, Stripe's API when configured.
    payments_provider: Literal["local", "stripe"] = Field("local", alias="PAYMENTS_PROVIDER")
    stripe_api_key: SecretStr | None = Field(None, alias="STRIPE_API_KEY")
    stripe_api_base: str = Field("https://api.stripe.com", alias="STRIPE_API_BASE")
    stripe_api_version: str = Field("2024-06-20", alias="STRIPE_API_VERSION", min_length=10)
    stripe_webhook_secret: SecretStr | None = Field(None, alias="STRIPE_WEBHOOK_SECRET")
    payments_connect_timeout: float = Field(2.0, alias="PAYMENTS_CONNECT_TIMEOUT", gt=0, le=60)
    payments_read_timeout: float = Field(10.0, alias="PAYMENTS_READ_TIMEOUT", gt=0, le=120)
    payments_max_connections: int = Field(20, alias="PAYMENTS_MAX_CONNECTIONS", ge=1, le=1000)
    payments_max_concurrency: int = Field(20, alias="PAYMENTS_MAX_CONCURRENCY", ge=1, le=1000)
    payments_retries: int = Field(2, alias="PAYMENTS_RETRIES", ge=0, le=10)
    payments_breaker_failures: int = Field(5, alias="PAYMENTS_BREAKER_FAILURES", ge=1, le=1000)
    payments_breaker_cooldown: float = Field(30.0, alias="PAYMENTS_BREAKER_COOLDOWN", gt=0, le=3600)
    payment_cache_ttl: float = Field(15.0, alias="PAYMENTS_CACHE_TTL", ge=0, le=3600)

    # Email: delivered from the transactional outbox by a worker (in the app, or `gateway worker`).
    email_url: str = Field("file://./var/mail", alias="EMAIL_URL")
    shop_name: str = Field("Gateway Shop", alias="GATEWAY_SHOP_NAME", min_length=1, max_length=100)
    email_from: str = Field("Gateway Shop <no-reply@gateway.local>", alias="EMAIL_FROM", min_length=3)
    email_max_attempts: int = Field(15, alias="EMAIL_MAX_ATTEMPTS", ge=1, le=100)
    email_worker: bool = Field(True, alias="GATEWAY_EMAIL_WORKER", description="deliver the outbox inside the app")
    email_poll_interval: float = Field(1.0, alias="EMAIL_POLL_INTERVAL", gt=0, le=3600)

    @field_validator("database_url")
    @classmethod
    def _async_database_url(cls, value: str) -> str:
        """Accept plain `postgresql://`/`sqlite://` URLs and pick the async driver; refuse other databases."""
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError("not a database URL (e.g. sqlite+aiosqlite:///./gateway.db)") from exc
        driver = _ASYNC_DRIVERS.get(url.drivername, url.drivername)
        if driver not in _SUPPORTED:
            raise ValueError(f"unsupported database {url.drivername!r}; use sqlite+aiosqlite or postgresql+asyncpg")
        return url.set(drivername=driver).render_as_string(hide_password=False)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if not value:
            return None
        if value.split("://", 1)[0] not in {"redis", "rediss", "unix", "redis+cluster"}:
            raise ValueError("must start with redis://, rediss://, unix:// or redis+cluster://")
        return value

    @field_validator("stripe_api_base")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s):// URL")
        return value.rstrip("/")

    @field_validator("email_url")
    @classmethod
    def _email_scheme(cls, value: str) -> str:
        if value.split("://", 1)[0] not in {"smtp", "smtps", "file", "console"}:
            raise ValueError("must start with smtp://, smtps://, file:// or console://")
        return value

    @field_validator("email_from")
    @classmethod
    def _sender_address(cls, value: str) -> str:
        if "@" not in parseaddr(value)[1] or "\n" in value or "\r" in value:
            raise ValueError('must be an address, e.g. "Shop <no-reply@shop.example>"')
        return value

    @model_validator(mode="after")
    def _provider_configured(self) -> Settings:
        if self.payments_provider == "stripe" and self.stripe_api_key is None:
            raise ValueError("STRIPE_API_KEY is required when PAYMENTS_PROVIDER=stripe")
        return self

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def graphiql_enabled(self) -> bool:
        return (not self.production) if self.graphiql is None else self.graphiql


class SettingsError(Exception):
    """Invalid configuration; the message is one line naming the setting."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # a rule across settings; the message names them
            raise SettingsError(f"invalid settings: {message}") from None
        name = str(error["loc"][0])
        alias = Settings.model_fields[name].alias if name in Settings.model_fields else None
        raise SettingsError(f"invalid setting {alias or name}: {message}") from None
