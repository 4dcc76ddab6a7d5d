"""Configuration from the environment and `.env`, read once here and handed down as arguments."""

from __future__ import annotations

from email.utils import parseaddr
from ipaddress import ip_network
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./gateway.db"
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}
_SUPPORTED = {"sqlite+aiosqlite", "postgresql+asyncpg"}
DEVELOPMENT_JWT_SECRET = "development-only-secret-do-not-use-in-production"
"""Signs development tokens (`gateway token`); production refuses to start with it."""
MIN_SECRET_LENGTH = 32
DEVELOPMENT_ANONYMOUS_SCOPES = "customers:read orders:read"
"""In development GraphiQL reads the whole seeded graph without a token (writes still need one)."""
PRODUCTION_ANONYMOUS_SCOPES = ""
"""The catalogue (products) is public; everything else needs a principal that may see it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field(DEFAULT_DATABASE_URL, alias="DATABASE_URL")
    redis_url: str | None = Field(None, alias="REDIS_URL")
    env: Literal["development", "production"] = Field("development", alias="GATEWAY_ENV")
    host: str = Field("127.0.0.1", alias="GATEWAY_HOST", min_length=1)
    port: int = Field(8000, alias="GATEWAY_PORT", ge=1, le=65535)
    graceful_timeout: int = Field(
        30,
        alias="GATEWAY_GRACEFUL_TIMEOUT",
        ge=1,
        le=3600,
        description="seconds shutdown waits for in-flight requests, then as long again for the email worker",
    )
    db_pool_size: int | None = Field(
        None,
        alias="GATEWAY_DB_POOL_SIZE",
        ge=1,
        le=500,
        description="database connections kept per worker (default: 16 on PostgreSQL, 20 for a SQLite file)",
    )
    max_body_bytes: int = Field(100_000, alias="GATEWAY_MAX_BODY_BYTES", ge=1_000)
    document_cache_size: int = Field(1_000, alias="GATEWAY_DOCUMENT_CACHE_SIZE", ge=0)
    graphiql: bool | None = Field(None, alias="GATEWAY_GRAPHIQL", description="default: on in development only")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", alias="GATEWAY_LOG_LEVEL")
    access_log: bool = Field(
        False, alias="GATEWAY_ACCESS_LOG", description="a line per HTTP request (uvicorn's access log)"
    )
    log_format: Literal["json", "console"] | None = Field(
        None, alias="GATEWAY_LOG_FORMAT", description="default: json in production, console in development"
    )
    metrics: bool = Field(True, alias="GATEWAY_METRICS", description="serve Prometheus metrics at /metrics")
    cost_extension: bool | None = Field(
        None,
        alias="GATEWAY_COST_EXTENSION",
        description="extensions.cost on every answer; default: on in development, never in production",
    )

    cache_prefix: str = Field("gw:", alias="GATEWAY_CACHE_PREFIX", max_length=64)
    apq: bool = Field(True, alias="GATEWAY_APQ", description="accept automatic persisted queries")
    apq_ttl: float = Field(7 * 24 * 3600, alias="GATEWAY_APQ_TTL", gt=0)
    trusted_documents_only: bool = Field(
        False, alias="GATEWAY_TRUSTED_DOCUMENTS_ONLY", description="every client may run only trusted documents"
    )
    trusted_documents_ttl: float = Field(30.0, alias="GATEWAY_TRUSTED_DOCUMENTS_TTL", ge=0, le=3600)
    response_cache: bool = Field(True, alias="GATEWAY_RESPONSE_CACHE", description="cache query results")
    response_cache_entries: int = Field(10_000, alias="GATEWAY_RESPONSE_CACHE_ENTRIES", ge=1)
    cache_default_max_age: int = Field(0, alias="GATEWAY_CACHE_DEFAULT_MAX_AGE", ge=0, le=86_400)
    cache_swr: float = Field(0.0, alias="GATEWAY_CACHE_SWR", ge=0, le=86_400)
    cache_near_ttl: float = Field(
        5.0,
        alias="GATEWAY_CACHE_NEAR_TTL",
        ge=0,
        le=3600,
        description="seconds an instance keeps its own copy of a response-cache entry read from Redis (0: off); "
        "every invalidation empties every instance's copies at once",
    )
    cache_near_bytes: int = Field(32 << 20, alias="GATEWAY_CACHE_NEAR_BYTES", ge=0)

    # Authentication: JWT bearer tokens (HS256 with a secret, or RS256/ES256 from a JWKS) and partner API keys.
    jwt_secret: SecretStr = Field(SecretStr(DEVELOPMENT_JWT_SECRET), alias="GATEWAY_JWT_SECRET")
    jwt_algorithms: Annotated[list[Literal["HS256", "RS256", "ES256"]], NoDecode] = Field(
        ["HS256"], alias="GATEWAY_JWT_ALGORITHMS"
    )
    jwks_url: str | None = Field(None, alias="GATEWAY_JWKS_URL", description="RS256/ES256 keys; HS256 is then off")
    jwks_cache_ttl: float = Field(300.0, alias="GATEWAY_JWKS_CACHE_TTL", gt=0, le=86_400)
    jwt_issuer: str | None = Field("gateway-dev", alias="GATEWAY_JWT_ISSUER")
    jwt_audience: str | None = Field("gateway", alias="GATEWAY_JWT_AUDIENCE")
    jwt_leeway: float = Field(30.0, alias="GATEWAY_JWT_LEEWAY", ge=0, le=600, description="clock skew, seconds")
    anonymous: bool = Field(True, alias="GATEWAY_ANONYMOUS", description="serve requests without credentials")
    anonymous_scopes: str | None = Field(
        None, alias="GATEWAY_ANONYMOUS_SCOPES", description="space-separated; default depends on GATEWAY_ENV"
    )

    # Abuse limits: refused before execution with a coded error.
    max_depth: int = Field(10, alias="GATEWAY_MAX_DEPTH", ge=1, le=100)
    max_aliases: int = Field(15, alias="GATEWAY_MAX_ALIASES", ge=0, le=1000)
    max_tokens: int = Field(2_000, alias="GATEWAY_MAX_TOKENS", ge=10, le=100_000)
    max_directives: int = Field(50, alias="GATEWAY_MAX_DIRECTIVES", ge=0, le=1000)
    max_cost: int = Field(10_000, alias="GATEWAY_MAX_COST", ge=1, le=10_000_000)
    batching: bool = Field(False, alias="GATEWAY_BATCHING", description="accept a JSON array of operations")
    max_batch_size: int = Field(10, alias="GATEWAY_MAX_BATCH_SIZE", ge=1, le=100)
    introspection: bool | None = Field(None, alias="GATEWAY_INTROSPECTION", description="default: development only")
    field_suggestions: bool | None = Field(
        None, alias="GATEWAY_FIELD_SUGGESTIONS", description='"Did you mean ...": default development only'
    )

    # Rate limiting (GCRA): shared through Redis when REDIS_URL is set.
    rate_limit: bool = Field(True, alias="GATEWAY_RATE_LIMIT")
    rate_limit_requests: int = Field(600, alias="GATEWAY_RATE_LIMIT_REQUESTS", ge=1, le=10_000_000)
    rate_limit_period: float = Field(60.0, alias="GATEWAY_RATE_LIMIT_PERIOD", gt=0, le=86_400)
    rate_limit_cost_weighted: bool = Field(
        False, alias="GATEWAY_RATE_LIMIT_COST_WEIGHTED", description="an operation spends its cost, not 1"
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        [], alias="GATEWAY_TRUSTED_PROXIES", description="CIDRs; X-Forwarded-For"
    )

    # Browser safety.
    cors_origins: Annotated[list[str], NoDecode] = Field([], alias="GATEWAY_CORS_ORIGINS")
    csrf_prevention: bool = Field(True, alias="GATEWAY_CSRF_PREVENTION")

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

    @field_validator("jwt_algorithms", "trusted_proxies", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """Lists come from the environment as `a,b` (or `a b`)."""
        if isinstance(value, str):
            return [part for part in value.replace(",", " ").split() if part]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IP address or CIDR network") from None
        return value

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s):// URL")
        return value or None

    @model_validator(mode="after")
    def _provider_configured(self) -> Settings:
        if self.payments_provider == "stripe" and self.stripe_api_key is None:
            raise ValueError("STRIPE_API_KEY is required when PAYMENTS_PROVIDER=stripe")
        return self

    @model_validator(mode="after")
    def _production_secrets(self) -> Settings:
        """Production refuses default, empty or short secrets (they would sign anyone's tokens)."""
        if not self.production:
            return self
        secrets: dict[str, SecretStr | None] = {"STRIPE_API_KEY": self.stripe_api_key}
        secrets["STRIPE_WEBHOOK_SECRET"] = self.stripe_webhook_secret
        if self.hs256_enabled:
            secrets["GATEWAY_JWT_SECRET"] = self.jwt_secret
        for name, secret in secrets.items():
            value = None if secret is None else secret.get_secret_value()
            if value is None and name != "GATEWAY_JWT_SECRET":
                continue  # optional unless its feature is configured
            if not value or value == DEVELOPMENT_JWT_SECRET:
                raise ValueError(f"{name} must be set to a secret of your own in production")
            if name == "GATEWAY_JWT_SECRET" and len(value) < MIN_SECRET_LENGTH:
                raise ValueError(f"{name} must be at least {MIN_SECRET_LENGTH} characters in production")
        return self

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def log_format_resolved(self) -> Literal["json", "console"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.production else "console"

    @property
    def cost_extension_enabled(self) -> bool:
        return not self.production and self.cost_extension is not False

    @property
    def graphiql_enabled(self) -> bool:
        return (not self.production) if self.graphiql is None else self.graphiql

    @property
    def introspection_enabled(self) -> bool:
        return (not self.production) if self.introspection is None else self.introspection

    @property
    def field_suggestions_enabled(self) -> bool:
        return (not self.production) if self.field_suggestions is None else self.field_suggestions

    @property
    def hs256_enabled(self) -> bool:
        """HS256 tokens are accepted unless a JWKS is configured (then only its public-key algorithms are)."""
        return self.jwks_url is None and "HS256" in self.jwt_algorithms

    @property
    def anonymous_scope_set(self) -> frozenset[str]:
        default = PRODUCTION_ANONYMOUS_SCOPES if self.production else DEVELOPMENT_ANONYMOUS_SCOPES
        return frozenset((default if self.anonymous_scopes is None else self.anonymous_scopes).split())


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
