"""Read a GraphQL-over-HTTP request into its parameters, or refuse it with the right status and a clear error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request

JSON_TYPES = ("application/json", "application/graphql-response+json")


class RequestError(Exception):
    """A request refused before (or instead of) execution: its HTTP status, message, `extensions.code` and headers."""

    def __init__(
        self, status: int, message: str, headers: dict[str, str] | None = None, *, code: str = "BAD_REQUEST"
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.code = code


@dataclass(frozen=True)
class GraphQLParams:
    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None
    document_id: str | None = None
    """A trusted document's id (GraphQL over HTTP persisted operations), instead of `query`."""


async def read_params(request: Request, *, max_body_bytes: int) -> GraphQLParams:
    if request.method == "GET":
        params = request.query_params
        return _validated(
            {
                "query": params.get("query"),
                "variables": _json_param(params.get("variables"), "variables"),
                "operationName": params.get("operationName"),
                "extensions": _json_param(params.get("extensions"), "extensions"),
                "documentId": params.get("documentId"),
            }
        )
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise RequestError(415, "Content-Type must be application/json", {"Accept-Post": "application/json"})
    body = await read_body(request, max_body_bytes)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"The request body is not valid JSON: {exc.msg}") from None
    if isinstance(payload, list):
        raise RequestError(400, "Batched requests are not supported: send one operation per request")
    if not isinstance(payload, dict):
        raise RequestError(400, "The request body must be a JSON object with a `query`")
    return _validated(payload)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed `limit` (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"The request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"The request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_param(value: str | None, name: str) -> Any:
    if value is None or value == "":
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        raise RequestError(400, f"The `{name}` query parameter is not valid JSON") from None


def _validated(payload: dict[str, Any]) -> GraphQLParams:
    """Check the types of the known keys; unknown keys are ignored as the spec asks."""
    query = payload.get("query")
    variables = payload.get("variables")
    operation_name = payload.get("operationName")
    extensions = payload.get("extensions")
    document_id = payload.get("documentId")
    if query is not None and not isinstance(query, str):
        raise RequestError(400, "`query` must be a string")
    if document_id is not None and (not isinstance(document_id, str) or not document_id):
        raise RequestError(400, "`documentId` must be a non-empty string")
    if not query and document_id is None and not (isinstance(extensions, dict) and "persistedQuery" in extensions):
        raise RequestError(400, "No GraphQL query found in the request: send `query`")
    if variables is not None and not isinstance(variables, dict):
        raise RequestError(400, "`variables` must be a JSON object")
    if operation_name is not None and not isinstance(operation_name, str):
        raise RequestError(400, "`operationName` must be a string")
    if extensions is not None and not isinstance(extensions, dict):
        raise RequestError(400, "`extensions` must be a JSON object")
    return GraphQLParams(query or None, variables, operation_name, extensions, document_id)


def response_media_type(accept: str | None) -> str | None:
    """The media type to answer with, or None when the client accepts neither JSON type (HTTP 406)."""
    if not accept:
        return "application/json"
    accepted = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    if "application/graphql-response+json" in accepted:
        return "application/graphql-response+json"
    if accepted & {"application/json", "application/*", "*/*"}:
        return "application/json"
    return None


def wants_html(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "") and not request.query_params
