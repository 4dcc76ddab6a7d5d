"""JWT bearer tokens: HS256 with a secret, RS256/ES256 from a JWKS served on loopback, and what they grant."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from gateway.auth.authenticator import TokenError
from gateway.auth.jwks import JwksKeys, KeysUnavailableError
from gateway.auth.tokens import TokenVerifier, issue_token
from resolvers.access.principal import PrincipalKind
from schema.ids import encode_id
from tests.conftest import ANONYMOUS, app_settings_for, serve_in_process

SECRET = "s" * 40
ISSUER = "https://id.example"
AUDIENCE = "gateway"


class JwksServer:
    """A real HTTP server on loopback serving a JWKS the test can rotate or break."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.status = 200
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


class Signer:
    def __init__(self, kid: str, algorithm: str) -> None:
        self.kid = kid
        self.algorithm = algorithm
        if algorithm == "RS256":
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.jwk = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        self.jwk |= {"kid": kid, "use": "sig", "alg": algorithm}

    def token(self, **claims: Any) -> str:
        return jwt.encode(_claims(**claims), self.private, algorithm=self.algorithm, headers={"kid": self.kid})


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": "user-1", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300}
    return {k: v for k, v in (claims | overrides).items() if v is not None}


def hs256(**claims: Any) -> str:
    return jwt.encode(_claims(**claims), SECRET, algorithm="HS256")


def verifier(**options: Any) -> TokenVerifier:
    defaults: dict[str, Any] = {
        "algorithms": ["HS256"],
        "secret": SECRET,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "leeway": 30,
    }
    return TokenVerifier(**(defaults | options))


async def test_a_valid_token_names_subject_roles_scopes_and_customer() -> None:
    customer = encode_id("Customer", 7)
    token = hs256(roles=["customer"], scope="orders:read orders:write", customer=customer)
    principal = await verifier().principal(token)
    assert principal.kind is PrincipalKind.USER
    assert principal.subject == "user-1"
    assert principal.roles == {"customer"}
    assert principal.scopes == {"orders:read", "orders:write"}
    assert principal.customer_id == 7
    assert principal.identity is not None


async def test_scp_lists_are_scopes_too() -> None:
    principal = await verifier().principal(hs256(scp=["customers:read"]))
    assert principal.scopes == {"customers:read"}


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda: hs256(exp=int(time.time()) - 31), "expired"),
        (lambda: hs256(nbf=int(time.time()) + 60), "not valid yet"),
        (lambda: hs256(iss="https://evil.example"), "issuer"),
        (lambda: hs256(aud="another-api"), "audience"),
        (lambda: hs256(exp=None), "'exp'"),
        (lambda: hs256(sub=None), "'sub'"),
        (lambda: jwt.encode(_claims(), "another-secret-of-forty-characters-000000", algorithm="HS256"), "signature"),
        (lambda: jwt.encode(_claims(), "", algorithm="none"), "algorithm 'none'"),
        (lambda: "not.a.jwt", "not a JWT"),
        (lambda: hs256(roles="admin"), "`roles` claim must be a list"),
        (lambda: hs256(roles=["customer"]), "must name its customer"),
        (lambda: hs256(roles=["customer"], customer=encode_id("Order", 1)), "not a Customer ID"),
        (lambda: "x" * 9000, "too long"),
    ],
)
async def test_bad_tokens_are_refused_with_the_reason(token: Any, reason: str) -> None:
    with pytest.raises(TokenError, match=reason):
        await verifier().principal(token())


async def test_clock_skew_within_the_leeway_is_tolerated() -> None:
    now = int(time.time())
    await verifier().principal(hs256(exp=now - 10, nbf=now + 10))
    with pytest.raises(TokenError, match="expired"):
        await verifier(leeway=0).principal(hs256(exp=now - 10))


async def test_an_hs256_token_is_refused_where_only_public_keys_are_trusted(jwks_server: JwksServer) -> None:
    """Algorithm confusion: a token HMAC-signed with the public key must not pass as RS256."""
    signer = Signer("k1", "RS256")
    jwks_server.keys = [signer.jwk]
    rs_only = verifier(algorithms=["RS256"], secret=None, jwks=JwksKeys(jwks_server.url))
    with pytest.raises(TokenError, match="algorithm 'HS256'"):
        await rs_only.principal(hs256())


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_public_key_tokens_verify_against_the_jwks(jwks_server: JwksServer, algorithm: str) -> None:
    signer = Signer("k1", algorithm)
    jwks_server.keys = [signer.jwk]
    tokens = verifier(algorithms=["RS256", "ES256"], secret=None, jwks=JwksKeys(jwks_server.url))
    assert (await tokens.principal(signer.token(roles=["staff"]))).roles == {"staff"}
    forged = Signer("k1", algorithm)  # same kid, another private key
    with pytest.raises(TokenError, match="signature"):
        await tokens.principal(forged.token())


async def test_keys_rotate_an_unknown_kid_refreshes_once(jwks_server: JwksServer) -> None:
    clock = [1000.0]
    old, new = Signer("old", "RS256"), Signer("new", "RS256")
    jwks_server.keys = [old.jwk]
    keys = JwksKeys(jwks_server.url, ttl=300, min_refresh_interval=10, clock=lambda: clock[0])
    tokens = verifier(algorithms=["RS256"], secret=None, jwks=keys)
    await tokens.principal(old.token())
    assert jwks_server.requests == 1

    jwks_server.keys = [new.jwk]  # the provider rotates
    clock[0] += 11
    await tokens.principal(new.token())  # unknown kid: one refresh finds it
    assert jwks_server.requests == 2
    with pytest.raises(TokenError, match="unknown key"):
        await tokens.principal(old.token())  # retired with the rotation
    stranger = Signer("stranger", "RS256")
    for _ in range(20):  # forged key ids cannot make the gateway hammer the provider
        with pytest.raises(TokenError, match="unknown key"):
            await tokens.principal(stranger.token())
    assert jwks_server.requests == 2

    clock[0] += 300  # the key cache expires: keys are fetched again for a token not verified yet
    await tokens.principal(new.token(sub="user-2"))
    assert jwks_server.requests == 3


async def test_cached_keys_survive_a_provider_outage_and_no_keys_is_unavailable(jwks_server: JwksServer) -> None:
    clock = [0.0]
    signer = Signer("k1", "ES256")
    jwks_server.keys = [signer.jwk]
    keys = JwksKeys(jwks_server.url, ttl=60, clock=lambda: clock[0])
    tokens = verifier(algorithms=["ES256"], secret=None, jwks=keys)
    await tokens.principal(signer.token())
    jwks_server.status = 500
    clock[0] += 61
    await tokens.principal(signer.token())  # refresh failed, the cached key still verifies

    cold = verifier(algorithms=["ES256"], secret=None, jwks=JwksKeys(jwks_server.url))
    with pytest.raises(KeysUnavailableError):
        await cold.principal(signer.token())


async def test_the_endpoint_refuses_bad_credentials_with_401(store_url: str, tmp_path: Path) -> None:
    settings = app_settings_for(store_url, tmp_path)
    query = "{ products(first: 1) { totalCount } }"
    async with serve_in_process(settings) as client:
        good = issue_token(
            settings.jwt_secret.get_secret_value(),
            subject="u",
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        assert (await client.post(query, headers={"Authorization": f"Bearer {good}"})).status_code == 200
        assert (await client.post(query, headers=ANONYMOUS)).status_code == 200  # anonymous may read products
        for header in ("Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer"):
            response = await client.post(query, headers={"Authorization": header})
            assert response.status_code == 401, header
            assert response.headers["www-authenticate"].startswith('Bearer realm="gateway"')
            [error] = response.json()["errors"]
            assert error["extensions"]["code"] == "UNAUTHENTICATED"
            assert "nonsense" not in error["message"]  # credentials are never echoed


async def test_anonymous_access_can_be_turned_off(store_url: str, tmp_path: Path) -> None:
    settings = app_settings_for(store_url, tmp_path, GATEWAY_ANONYMOUS=False)
    async with serve_in_process(settings) as client:
        response = await client.post("{ products(first: 1) { totalCount } }", headers=ANONYMOUS)
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_the_endpoint_answers_503_when_tokens_cannot_be_verified(
    store_url: str, tmp_path: Path, jwks_server: JwksServer
) -> None:
    signer = Signer("k1", "RS256")
    jwks_server.status = 503
    settings = app_settings_for(store_url, tmp_path, GATEWAY_JWKS_URL=jwks_server.url, GATEWAY_JWT_ISSUER=ISSUER)
    async with serve_in_process(settings) as client:
        response = await client.post("{ __typename }", headers={"Authorization": f"Bearer {signer.token()}"})
        assert response.status_code == 503
        jwks_server.status = 200
        jwks_server.keys = [signer.jwk]
        response = await client.post("{ __typename }", headers={"Authorization": f"Bearer {signer.token()}"})
        assert response.status_code == 200, response.text


async def test_tokens_and_secrets_never_reach_logs_or_answers(
    store_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "q" * 40
    settings = app_settings_for(store_url, tmp_path, GATEWAY_JWT_SECRET=secret)
    forged = jwt.encode(_claims(), "w" * 40, algorithm="HS256")
    caplog.set_level(logging.DEBUG)
    async with serve_in_process(settings) as client:
        refused = await client.post("{ __typename }", headers={"Authorization": f"Bearer {forged}"})
        accepted = await client.post("{ customers { totalCount } }")  # the client's own admin token
    assert (refused.status_code, accepted.status_code) == (401, 200)
    for text in (caplog.text, refused.text, accepted.text):
        assert forged not in text
        assert secret not in text
        assert client.http.headers["authorization"].removeprefix("Bearer ") not in text


async def test_api_keys_that_cannot_be_checked_are_a_503_not_a_500(tmp_path: Path) -> None:
    """The database is down (nothing listens on the port): the key can be neither accepted nor refused."""
    settings = app_settings_for("postgresql+asyncpg://gateway@127.0.0.1:9/none", tmp_path)
    async with serve_in_process(settings) as client:
        key = "gwk_0123456789ab_" + "A" * 43
        response = await client.post("{ __typename }", headers={"X-API-Key": key})
        assert response.status_code == 503, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert key not in response.text


async def test_a_verified_token_is_reused_until_it_expires() -> None:
    tokens = verifier(leeway=0)
    token = hs256(exp=int(time.time()) + 2)
    first = await tokens.principal(token)
    tokens.secret = "another-secret-that-would-not-verify-it-0000"  # a second verification would fail
    assert await tokens.principal(token) is first
    await asyncio.sleep(2.1)
    with pytest.raises(TokenError):  # past `exp` it is verified again (and refused)
        await tokens.principal(token)
