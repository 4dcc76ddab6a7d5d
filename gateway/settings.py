"""Configuration from the environment and `.env`, read once here and handed down as arguments."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError, field_validator
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
        name = str(error["loc"][0]) if error["loc"] else "settings"
        alias = Settings.model_fields[name].alias if name in Settings.model_fields else None
        message = error["msg"].removeprefix("Value error, ")
        raise SettingsError(f"invalid setting {alias or name}: {message}") from None
