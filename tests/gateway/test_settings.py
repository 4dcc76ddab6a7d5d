"""Settings: production refuses default or weak secrets, and secrets never show in messages or reprs."""

from __future__ import annotations

import pytest

from gateway.settings import DEVELOPMENT_JWT_SECRET, SettingsError, load_settings

STRONG = "p" * 40


def production(**overrides: object) -> object:
    return load_settings(_env_file=None, GATEWAY_ENV="production", **overrides)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({}, "GATEWAY_JWT_SECRET"),  # the development default
        ({"GATEWAY_JWT_SECRET": DEVELOPMENT_JWT_SECRET}, "GATEWAY_JWT_SECRET"),
        ({"GATEWAY_JWT_SECRET": ""}, "GATEWAY_JWT_SECRET"),
        ({"GATEWAY_JWT_SECRET": "short-secret"}, "at least 32"),
        ({"GATEWAY_JWT_SECRET": STRONG, "STRIPE_WEBHOOK_SECRET": ""}, "STRIPE_WEBHOOK_SECRET"),
        (
            {"GATEWAY_JWT_SECRET": STRONG, "PAYMENTS_PROVIDER": "stripe", "STRIPE_API_KEY": ""},
            "STRIPE_API_KEY",
        ),
    ],
)
def test_production_refuses_default_empty_or_weak_secrets(overrides: dict[str, object], named: str) -> None:
    with pytest.raises(SettingsError, match=named) as refused:
        production(**overrides)
    for value in overrides.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in str(refused.value)


def test_production_starts_with_secrets_of_its_own() -> None:
    settings = load_settings(_env_file=None, GATEWAY_ENV="production", GATEWAY_JWT_SECRET=STRONG)
    assert settings.production
    assert STRONG not in repr(settings)
    assert STRONG not in str(settings.model_dump())


def test_a_jwks_makes_the_shared_secret_unnecessary() -> None:
    settings = load_settings(
        _env_file=None,
        GATEWAY_ENV="production",
        GATEWAY_JWKS_URL="https://id.example/.well-known/jwks.json",
        GATEWAY_JWT_ALGORITHMS="RS256,ES256",
    )
    assert not settings.hs256_enabled
    assert settings.jwt_algorithms == ["RS256", "ES256"]


def test_development_defaults_let_graphiql_read_and_production_serves_the_catalogue_only() -> None:
    assert load_settings(_env_file=None).anonymous_scope_set == {"customers:read", "orders:read"}
    assert production(GATEWAY_JWT_SECRET=STRONG).anonymous_scope_set == frozenset()  # type: ignore[attr-defined]
    custom = load_settings(_env_file=None, GATEWAY_ANONYMOUS_SCOPES="orders:read")
    assert custom.anonymous_scope_set == {"orders:read"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8,not-a-network"),
        ("GATEWAY_JWKS_URL", "ftp://id.example/jwks"),
        ("GATEWAY_JWT_ALGORITHMS", "none"),
    ],
)
def test_invalid_security_settings_stop_start_up_naming_the_setting(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(_env_file=None, **{name: value})
