"""`gateway token`: a development token the gateway itself accepts; refused where it makes no sense."""

from __future__ import annotations

import pytest

from gateway.auth.setup import token_verifier
from gateway.cli import main
from gateway.settings import load_settings
from schema.ids import encode_id


async def test_a_customer_token_is_accepted_as_that_customer(capsys: pytest.CaptureFixture[str]) -> None:
    customer = encode_id("Customer", 3)
    assert main(["token", "--roles", "customer", "--customer", customer, "--scopes", "orders:read"]) == 0
    token = capsys.readouterr().out.strip()
    principal = await token_verifier(load_settings(_env_file=None)).principal(token)
    assert principal.subject == "developer"
    assert principal.roles == frozenset({"customer"})
    assert principal.scopes == frozenset({"orders:read"})
    assert principal.customer_id == 3


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["token", "--roles", "customer"], {}, "needs --customer"),
        (["token", "--ttl", "0"], {}, "--ttl"),
        (["token"], {"GATEWAY_ENV": "production", "GATEWAY_JWT_SECRET": "x" * 40}, "identity provider"),
        (["token"], {"GATEWAY_JWKS_URL": "http://127.0.0.1:9/jwks"}, "HS256 tokens are off"),
    ],
)
def test_refusals_exit_2_with_the_reason(
    argv: list[str],
    env: dict[str, str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""
