"""Read a GraphQL-over-HTTP request into its parameters, or refuse it with the right status and a clear error.

Statuses follow GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/): a request that is not
well-formed (bad JSON, bad parameters, an unsupported media type) is a 4xx whatever the client accepts. A
well-formed request whose operation cannot run (parse, validation, variable coercion or operation selection
errors: a "request error", no `data`) is `400` under `application/graphql-response+json` but `200` under
legacy `application/json`, whose clients read errors only from 200 bodies (`graphql_status`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import unquote_to_bytes

import orjson
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.types import Scope

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
LEGACY_JSON = "application/json"
SIMPLE_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
"""Content types a browser sends cross-site without a CORS preflight (so a page on any site can forge them)."""
UTF_8 = frozenset({"utf-8", "utf8"})
BATCHING_DISABLED = "BATCHING_DISABLED"
BATCH_TOO_LARGE = "BATCH_TOO_LARGE"
_ACCEPT_POST = {"Accept-Post": f"{LEGACY_JSON}; charset=utf-8"}


class RequestError(Exception):
    """A request refused before (or instead of) execution: its HTTP status, message, `extensions.code` and headers.

    `graphql`: a GraphQL request error (the document's operation could not be selected), which legacy
    `application/json` clients get with 200 (see `graphql_status`); other refusals keep `status` for everyone.
    """

    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        code: str = "BAD_REQUEST",
        graphql: bool = False,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.code = code
        self.graphql = graphql
        self.extensions = extensions or {}
        """More of the error's `extensions` than its `code` (e.g. `retryAfter`)."""

    def status_for(self, media_type: str) -> int:
        return graphql_status(media_type, self.status) if self.graphql else self.status


def graphql_status(media_type: str, status: int) -> int:
    """The HTTP status of a GraphQL response that is `status` (200, or 400 for a request error) under
    `application/graphql-response+json`: legacy `application/json` gets 200 for every well-formed request."""
    return 200 if media_type == LEGACY_JSON and status == 400 else status


class IndexedHeaders(Headers):
    """Starlette's request headers with dictionary lookups: its own scan every header on every lookup, and a
    request's headers are looked up a dozen times (credentials, content type, accept, cache control)."""

    def __init__(self, scope: Scope) -> None:
        super().__init__(scope=scope)
        self._index: dict[bytes, bytes] = {}
        for name, value in self._list:
            self._index.setdefault(name, value)  # the first of repeated headers, as `Headers` answers

    def __getitem__(self, key: str) -> str:
        value = self._index.get(_header_name(key))
        if value is None:
            raise KeyError(key)
        return value.decode("latin-1")

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and _header_name(key) in self._index

    def get(self, key: str, default: Any = None) -> Any:
        value = self._index.get(_header_name(key))
        return default if value is None else value.decode("latin-1")


@lru_cache(maxsize=256)
def _header_name(key: str) -> bytes:
    """The raw (lower-case) name of a header asked for by name; the names code asks for are few."""
    return key.lower().encode("latin-1")


class GatewayRequest(Request):
    @property
    def headers(self) -> Headers:
        if not hasattr(self, "_headers"):
            self._headers = IndexedHeaders(self.scope)
        return self._headers


class GraphQLParams(NamedTuple):
    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None
    document_id: str | None = None
    """A trusted document's id (GraphQL over HTTP persisted operations), instead of `query`."""


async def read_params(
    request: Request, *, max_body_bytes: int, max_batch_size: int | None = None
) -> GraphQLParams | list[GraphQLParams]:
    """The request's operation, or (a JSON array body, when `max_batch_size` is set) its batch of operations."""
    if request.method == "GET":
        if not _is_utf8(unquote_to_bytes(request.scope.get("query_string", b""))):
            raise RequestError(400, "The query string is not valid UTF-8 once percent-decoded")
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
    _check_content_type(request.headers.get("content-type"))
    body = await read_body(request, max_body_bytes)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if not _is_utf8(body):
            raise RequestError(400, "The request body is not valid UTF-8 (GraphQL over HTTP is UTF-8 JSON)") from None
        raise RequestError(400, f"The request body is not valid JSON: {exc.msg}") from None
    if isinstance(payload, list):
        return _batch(payload, max_batch_size)
    if not isinstance(payload, dict):
        raise RequestError(400, "The request body must be a JSON object with a `query`")
    return _validated(payload)


_PLAIN_JSON = frozenset({"application/json", "application/json; charset=utf-8", "application/json;charset=utf-8"})
"""What nearly every client sends: accepted without parsing the header."""


def _check_content_type(header: str | None) -> None:
    """Refuse (415) any body but UTF-8 `application/json`, saying why."""
    if header in _PLAIN_JSON:
        return
    if not header:
        raise RequestError(415, "Content-Type must be application/json (none was sent)", _ACCEPT_POST)
    media_type, parameters = parse_media_type(header)
    if media_type in SIMPLE_CONTENT_TYPES:
        raise RequestError(
            415,
            f"Content-Type must be application/json: {media_type} is refused because browsers send it from any site "
            "without a CORS preflight (cross-site request forgery)",
            _ACCEPT_POST,
        )
    if media_type == GRAPHQL_RESPONSE_JSON:
        raise RequestError(
            415, f"{GRAPHQL_RESPONSE_JSON} is a response type: send the request body as application/json", _ACCEPT_POST
        )
    if media_type != LEGACY_JSON:
        raise RequestError(415, f"Content-Type must be application/json, not {media_type}", _ACCEPT_POST)
    charset = parameters.get("charset")
    if charset is not None and charset.lower() not in UTF_8:
        raise RequestError(415, f"Request bodies must be UTF-8, not charset={charset}", _ACCEPT_POST)


def parse_media_type(header: str) -> tuple[str, dict[str, str]]:
    """`'Application/JSON; charset="UTF-8"'` -> `('application/json', {'charset': 'UTF-8'})`."""
    essence, *rest = header.split(";")
    parameters: dict[str, str] = {}
    for part in rest:
        name, sep, value = part.partition("=")
        if sep:
            parameters[name.strip().lower()] = value.strip().strip('"')
    return essence.strip().lower(), parameters


def _batch(payload: list[Any], max_batch_size: int | None) -> list[GraphQLParams]:
    if max_batch_size is None:
        raise RequestError(400, "Batched requests are disabled: send one operation per request", code=BATCHING_DISABLED)
    if not payload:
        raise RequestError(400, "The batch is empty: send at least one operation")
    if len(payload) > max_batch_size:
        raise RequestError(
            400, f"A batch may hold at most {max_batch_size} operations, not {len(payload)}", code=BATCH_TOO_LARGE
        )
    operations = []
    for index, item in enumerate(payload):
        try:
            if not isinstance(item, dict):
                raise RequestError(400, "it must be a JSON object with a `query`")
            operations.append(_validated(item))
        except RequestError as error:
            message = f"Operation {index} of the batch: {error.message}"
            raise RequestError(
                error.status, message, error.headers, code=error.code, extensions=error.extensions
            ) from None
    return operations


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed `limit` (declared or streamed).

    Reads the ASGI messages itself: `Request.stream()` is an async generator, which costs a cache hit more than
    the rest of reading its body."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"The request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"The request body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


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


@lru_cache(maxsize=128)  # clients send a handful of distinct Accept headers, once per request
def response_media_type(accept: str | None) -> str | None:
    """The media type to answer with, or None when the client accepts neither JSON type (HTTP 406)."""
    if not accept:
        return LEGACY_JSON
    accepted = set()
    for part in accept.split(","):
        media_type, parameters = parse_media_type(part)
        if _weight(parameters) > 0:  # q=0 means "not acceptable"
            accepted.add(media_type)
    if GRAPHQL_RESPONSE_JSON in accepted:
        return GRAPHQL_RESPONSE_JSON
    if accepted & {LEGACY_JSON, "application/*", "*/*"}:
        return LEGACY_JSON
    return None


def _weight(parameters: dict[str, str]) -> float:
    try:
        return float(parameters.get("q", "1"))
    except ValueError:
        return 1.0


def wants_html(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "") and not request.query_params
