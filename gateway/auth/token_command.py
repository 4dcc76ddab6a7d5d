"""`gateway token`: print a development bearer token, signed with this gateway's HS256 secret."""

from __future__ import annotations

import argparse
import sys

from gateway.auth.tokens import issue_token
from gateway.settings import Settings
from integrations.errors import UserInputError
from schema.ids import decode_typed_id


def add_token_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = commands.add_parser(
        "token",
        help="print a development bearer token",
        description="Print an HS256 bearer token this gateway accepts, for GraphiQL or curl in development "
        "(send it as `Authorization: Bearer <token>`). Examples: `gateway token --roles admin`; `gateway token "
        '--roles customer --customer Q3VzdG9tZXI6MQ`; `gateway token --roles staff --scopes "orders:read"`.',
    )
    token.add_argument("--subject", default="developer", help="the `sub` claim (default: developer)")
    token.add_argument("--roles", default="admin", help='space-separated roles (default: "admin")')
    token.add_argument("--scopes", default="", help='space-separated scopes, e.g. "customers:read orders:write"')
    token.add_argument("--customer", help="the Customer ID a `customer` role acts as")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (default: 3600)")
    token.set_defaults(run=_token)


def _token(args: argparse.Namespace, settings: Settings) -> int:
    if settings.production:
        print("gateway: tokens for production come from your identity provider, not this command", file=sys.stderr)
        return 2
    if not settings.hs256_enabled:
        print("gateway: HS256 tokens are off (GATEWAY_JWKS_URL is set)", file=sys.stderr)
        return 2
    roles = args.roles.split()
    if "customer" in roles:
        try:
            decode_typed_id(args.customer or "", "Customer", field="--customer")
        except UserInputError as error:
            print(f"gateway: a customer token needs --customer: {error.message}", file=sys.stderr)
            return 2
    if not 1 <= args.ttl <= 30 * 86_400:
        print("gateway: --ttl must be between 1 second and 30 days", file=sys.stderr)
        return 2
    print(
        issue_token(
            settings.jwt_secret.get_secret_value(),
            subject=args.subject,
            roles=roles,
            scopes=args.scopes.split(),
            customer=args.customer,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl=args.ttl,
        )
    )
    return 0
