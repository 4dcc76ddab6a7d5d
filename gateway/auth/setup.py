"""Build the authenticator from settings."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.auth.authenticator import Authenticator
from gateway.auth.jwks import JwksKeys
from gateway.auth.tokens import TokenVerifier
from gateway.settings import Settings
from resolvers.access.api_keys import ApiKeys
from resolvers.access.principal import Principal


def authenticator(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> Authenticator:
    anonymous = Principal.anonymous(settings.anonymous_scope_set) if settings.anonymous else None
    return Authenticator(tokens=token_verifier(settings), api_keys=ApiKeys(sessionmaker), anonymous=anonymous)


async def drain_authenticator(authenticator: Authenticator) -> None:
    """Wait for the authenticator's background writes (API keys' last use) before the store closes."""
    if isinstance(authenticator.api_keys, ApiKeys):
        await authenticator.api_keys.drain()


def token_verifier(settings: Settings) -> TokenVerifier:
    if settings.jwks_url is not None:
        return TokenVerifier(
            algorithms=[a for a in settings.jwt_algorithms if a != "HS256"] or ["RS256", "ES256"],
            jwks=JwksKeys(settings.jwks_url, ttl=settings.jwks_cache_ttl),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway=settings.jwt_leeway,
        )
    return TokenVerifier(
        algorithms=["HS256"],
        secret=settings.jwt_secret.get_secret_value(),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway=settings.jwt_leeway,
    )
