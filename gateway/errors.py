"""GraphQL errors as clients see them: every error carries `extensions.code`; internals never leak.

Codes: the domain's `ErrorCode`s, the phase codes (`GRAPHQL_PARSE_FAILED`, `GRAPHQL_VALIDATION_FAILED`),
`BAD_USER_INPUT` (variables, operation name), `BAD_REQUEST` (the HTTP request itself) and
`INTERNAL_SERVER_ERROR` (a bug or an outage: the message is replaced, details go to the log with the same id).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError

from integrations.errors import GatewayError, StoreUnavailableError, UserInputError

logger = logging.getLogger("gateway.errors")

INTERNAL = "INTERNAL_SERVER_ERROR"
BAD_USER_INPUT = "BAD_USER_INPUT"
BAD_REQUEST = "BAD_REQUEST"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"


def request_error(message: str, code: str = BAD_REQUEST) -> dict[str, Any]:
    """An error about the HTTP request itself (no operation ran)."""
    return {"message": message, "extensions": {"code": code}}


def format_error(error: GraphQLError, *, expose_internal: bool) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    extensions: dict[str, Any] = dict(formatted.get("extensions") or {})
    original = error.original_error
    if isinstance(error, GraphQLSyntaxError):
        extensions["code"] = PARSE_FAILED
    elif isinstance(original, StoreUnavailableError):
        extensions["code"] = SERVICE_UNAVAILABLE
    elif isinstance(original, GatewayError):
        extensions["code"] = original.code.value
        if isinstance(original, UserInputError) and original.field:
            extensions["field"] = original.field
    elif original is not None and not isinstance(original, GraphQLError):
        error_id = uuid.uuid4().hex
        logger.error("unexpected error %s at %s", error_id, error.path, exc_info=original)
        extensions.update(code=INTERNAL, errorId=error_id)
        if not expose_internal:
            formatted["message"] = f"Internal server error (id {error_id})"
    elif "code" not in extensions:
        extensions["code"] = BAD_USER_INPUT if error.path is None else INTERNAL
    formatted["extensions"] = extensions
    return formatted


def is_request_error(data: object, errors: list[GraphQLError] | None) -> bool:
    """True when no operation ran: parse, validation, variable or operation-selection errors (HTTP 400)."""
    return data is None and bool(errors) and all(error.path is None for error in errors or ())
