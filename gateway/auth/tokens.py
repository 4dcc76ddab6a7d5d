"""Verify JWT bearer tokens (PyJWT) and read the principal from their claims.

HS256 with a shared secret (development, or a trusted issuer holding the secret) or RS256/ES256 with keys from a
JWKS URL (production identity providers). `exp` is required; `nbf`, `iss` and `aud` are checked when
configured, with `leeway` seconds of clock skew. Claims read:

- `sub` (required): who this is.
- `roles`: a list, e.g. `["staff"]`, `["customer"]`, `["admin"]`.
- `scope` (space-separated, OAuth 2) or `scp` (list): e.g. `"customers:read orders:read"`.
- `customer`: the Customer global ID a `customer` role acts as (required for that role).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import jwt

from gateway.auth.authenticator import TokenError
from gateway.auth.jwks import JwksKeys
from integrations.errors import UserInputError
from resolvers.access.principal import CUSTOMER, Principal, PrincipalKind
from resolvers.expiring_lru import ExpiringLRU
from schema.ids import decode_typed_id

MAX_TOKEN_LENGTH = 8_192
MAX_CLAIM_ITEMS = 100
VERIFIED_ENTRIES = 10_000
VERIFIED_TTL = 300.0
"""A verified token's principal is reused (no signature check) for this long at most, and never past `exp`."""


class TokenVerifier:
    def __init__(
        self,
        *,
        algorithms: Sequence[str],
        secret: str | None = None,
        jwks: JwksKeys | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        leeway: float = 30.0,
    ) -> None:
        if "HS256" in algorithms and not secret:
            raise ValueError("HS256 needs a secret")
        if any(a != "HS256" for a in algorithms) and jwks is None:
            raise ValueError("RS256/ES256 need a JWKS")
        self.algorithms = frozenset(algorithms)
        self.secret = secret
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self._verified: ExpiringLRU[str, tuple[Principal, int]] = ExpiringLRU(VERIFIED_TTL, VERIFIED_ENTRIES, time.time)

    async def principal(self, token: str) -> Principal:
        """The token's principal; a token seen recently is not verified again (clients resend the same one) unless
        it expired or the JWKS's keys changed since (a retired key retires its tokens)."""
        found, cached = self._verified.get(token)
        if found and cached is not None and cached[1] == self._key_generation():
            return cached[0]
        claims = await self.claims(token)
        principal = _principal(claims)
        expires_in = float(claims["exp"]) + self.leeway - time.time()
        self._verified.put(token, (principal, self._key_generation()), ttl=expires_in)
        return principal

    def _key_generation(self) -> int:
        return self.jwks.generation if self.jwks is not None else 0

    async def claims(self, token: str) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenError("it is too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise TokenError("it is not a JWT") from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise TokenError(f"algorithm {algorithm!r} is not accepted")
        key: Any = self.secret
        if algorithm != "HS256":
            assert self.jwks is not None
            kid = header.get("kid")
            key = await self.jwks.key(kid if isinstance(kid, str) else None, algorithm)
            if key is None:
                raise TokenError("it is signed with an unknown key")
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("it has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("it is not valid yet (nbf)") from None
        except jwt.InvalidIssuerError:
            raise TokenError("it was issued by an issuer this gateway does not trust") from None
        except jwt.InvalidAudienceError:
            raise TokenError("it is meant for another audience") from None
        except jwt.MissingRequiredClaimError as error:
            raise TokenError(f"it lacks the {error.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise TokenError("its signature does not verify") from None
        except jwt.PyJWTError:
            raise TokenError("it cannot be decoded") from None


def _principal(claims: dict[str, Any]) -> Principal:
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise TokenError("its `sub` claim must be a non-empty string")
    roles = _strings(claims.get("roles", []), "roles")
    scope = claims.get("scope", claims.get("scp", []))
    scopes = _strings(scope.split() if isinstance(scope, str) else scope, "scope")
    customer_id = None
    if CUSTOMER in roles:
        customer = claims.get("customer")
        if not isinstance(customer, str):
            raise TokenError("a customer token must name its customer (`customer` claim: a Customer ID)")
        try:
            customer_id = decode_typed_id(customer, "Customer", field="customer")
        except UserInputError:
            raise TokenError("its `customer` claim is not a Customer ID") from None
    return Principal(PrincipalKind.USER, subject, roles=roles, scopes=scopes, customer_id=customer_id)


def _strings(value: object, claim: str) -> frozenset[str]:
    if not isinstance(value, list) or len(value) > MAX_CLAIM_ITEMS or not all(isinstance(v, str) for v in value):
        raise TokenError(f"its `{claim}` claim must be a list of strings")
    return frozenset(value)


def issue_token(
    secret: str,
    *,
    subject: str,
    roles: Sequence[str] = (),
    scopes: Sequence[str] = (),
    customer: str | None = None,
    issuer: str | None = None,
    audience: str | None = None,
    ttl: float = 3600.0,
) -> str:
    """An HS256 token this gateway accepts: for development (`gateway token`) and tests."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject, "iat": now, "nbf": now, "exp": now + int(ttl), "roles": list(roles)}
    if scopes:
        claims["scope"] = " ".join(scopes)
    if customer is not None:
        claims["customer"] = customer
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")
