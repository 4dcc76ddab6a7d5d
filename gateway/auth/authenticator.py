"""Read a request's credentials and answer with its principal, or refuse it with 401.

- `Authorization: Bearer <JWT>`: a user (customer or staff), verified by `tokens.TokenVerifier`.
- `X-API-Key: <key>` (or `Authorization: Bearer gwk_...`): a partner service, bound to its client's policy.
- nothing: the anonymous principal with its configured scopes, unless anonymous access is off.

Bad credentials are refused, never downgraded to anonymous: a client with an expired token must learn so.
"""

from __future__ import annotations

import logging
from typing import Protocol

from starlette.requests import Request

from gateway.auth.jwks import KeysUnavailableError
from gateway.request import RequestError
from integrations.errors import StoreUnavailableError
from resolvers.access.api_keys import KEY_PREFIX as API_KEY_PREFIX
from resolvers.access.principal import Principal

logger = logging.getLogger("gateway.auth")

UNAUTHENTICATED = "UNAUTHENTICATED"
API_KEY_HEADER = "x-api-key"


class TokenError(Exception):
    """A bearer token that cannot be accepted; the message says why without echoing the token."""


class Tokens(Protocol):
    async def principal(self, token: str) -> Principal: ...


class ApiKeyPrincipals(Protocol):
    async def principal(self, key: str) -> Principal | None: ...


class Authenticator:
    def __init__(
        self,
        *,
        tokens: Tokens | None,
        api_keys: ApiKeyPrincipals | None,
        anonymous: Principal | None,
    ) -> None:
        self.tokens = tokens
        self.api_keys = api_keys
        self.anonymous = anonymous
        """None: requests without credentials are refused."""

    async def authenticate(self, request: Request) -> Principal:
        key = request.headers.get(API_KEY_HEADER)
        authorization = request.headers.get("authorization")
        bearer = _bearer(authorization) if authorization else None
        if key is None and bearer is not None and bearer.startswith(API_KEY_PREFIX):
            key, bearer = bearer, None
        if key is not None:
            return await self._api_key(key)
        if bearer is not None:
            return await self._token(bearer)
        if self.anonymous is None:
            raise _unauthenticated("Authentication required: send a bearer token or an API key")
        return self.anonymous

    async def _api_key(self, key: str) -> Principal:
        try:
            principal = await self.api_keys.principal(key) if self.api_keys is not None else None
        except StoreUnavailableError:
            raise _unavailable("API keys cannot be checked right now") from None
        if principal is None:
            raise _unauthenticated("The API key is not valid (unknown or revoked)", error="invalid_token")
        return principal

    async def _token(self, token: str) -> Principal:
        if self.tokens is None:
            raise _unauthenticated("Bearer tokens are not accepted by this gateway", error="invalid_token")
        try:
            return await self.tokens.principal(token)
        except TokenError as error:
            raise _unauthenticated(f"The bearer token is not valid: {error}", error="invalid_token") from None
        except KeysUnavailableError:
            logger.exception("cannot verify bearer tokens")
            raise _unavailable("Tokens cannot be verified right now") from None


def _bearer(authorization: str) -> str:
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise _unauthenticated("The Authorization header must be `Bearer <token>`", error="invalid_request")
    return credentials.strip()


def _unavailable(message: str) -> RequestError:
    return RequestError(503, message, {"Retry-After": "5"}, code="SERVICE_UNAVAILABLE")


def _unauthenticated(message: str, *, error: str | None = None) -> RequestError:
    challenge = 'Bearer realm="gateway"' + (f', error="{error}"' if error else "")
    return RequestError(401, message, {"WWW-Authenticate": challenge}, code=UNAUTHENTICATED)
