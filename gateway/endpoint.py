"""The `/graphql` endpoint: GraphQL over HTTP (POST JSON, GET for queries) and GraphiQL for browsers.

Owned here rather than Strawberry's view so status codes, error shapes and encoding are exactly ours:
every refusal is a GraphQL error object with `extensions.code`, and client mistakes are 4xx, never 500, except
that GraphQL request errors are 200 for legacy `application/json` clients, as GraphQL over HTTP asks
(`request.graphql_status`). A JSON array body is a batch (when enabled): each operation runs through
`_operation`, exactly as a request of its own would.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from contextlib import nullcontext
from typing import Any

import orjson
from graphql import OperationType as GraphQLOperationType
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry import Schema
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from gateway.auth.authenticator import Authenticator
from gateway.cache_policy import CacheHints
from gateway.cache_policy import Scope as CacheScope
from gateway.documents import Document, Documents, prepared
from gateway.errors import BAD_USER_INPUT, SERVICE_UNAVAILABLE, format_error, is_request_error, request_error
from gateway.graphiql import render_graphiql
from gateway.limits.suggestions import strip_suggestions
from gateway.observability import metrics
from gateway.observability.cost import with_cost
from gateway.observability.record import current as current_record
from gateway.observability.record import note_errors
from gateway.persisted_queries import PersistedQueries
from gateway.rate_limit import Admission, RateLimit
from gateway.request import (
    GatewayRequest,
    GraphQLParams,
    RequestError,
    graphql_status,
    read_params,
    response_media_type,
    wants_html,
)
from gateway.response_cache import CacheState, Entry, Produced, ResponseCache, Served
from gateway.safelist import Safelist
from integrations.errors import StoreUnavailableError
from integrations.store.changes import ChangeFeed
from integrations.store.session import StoreSession
from resolvers.access.principal import Principal
from resolvers.services import Services
from schema.context import Context
from schema.execution import execute_query

logger = logging.getLogger("gateway.endpoint")

GET_OPERATIONS = frozenset({OperationType.QUERY})
POST_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})
VARY = "Accept, Authorization, X-API-Key"
"""The request headers an answer depends on: the format and the credentials (`auth/authenticator.py`)."""
VARY_ENCODED = VARY.encode("latin-1")
# Enum members' `.value` is a descriptor call: the hit path reads these instead.
_STATE_VALUES = {state: state.value.encode("latin-1") for state in CacheState}
_SCOPE_NAMES = {scope: scope.value for scope in CacheScope}
_AGED = frozenset({CacheState.HIT, CacheState.STALE})


class GraphQLEndpoint:
    def __init__(
        self,
        schema: Schema,
        sessionmaker: async_sessionmaker[AsyncSession],
        documents: Documents,
        changes: ChangeFeed,
        hints: CacheHints,
        safelist: Safelist,
        authenticator: Authenticator,
        *,
        max_body_bytes: int,
        graphiql: bool,
        expose_internal_errors: bool,
        max_batch_size: int | None = None,
        cost_extension: bool = False,
        direct_queries: bool = True,
    ) -> None:
        self.schema = schema
        self.sessionmaker = sessionmaker
        self.documents = documents
        self.changes = changes
        self.hints = hints
        self.safelist = safelist
        self.authenticator = authenticator
        self.max_body_bytes = max_body_bytes
        self.max_batch_size = max_batch_size
        """Operations a batch (a JSON array body) may hold; None: batching is off (`BATCHING_DISABLED`)."""
        self.graphiql = graphiql
        self.expose_internal_errors = expose_internal_errors
        self.cost_extension = cost_extension
        """Development: splice `extensions.cost` into answers as they are sent (`observability/cost.py`)."""
        self.direct_queries = direct_queries
        """Run valid queries on graphql-core directly (`schema.execution`), without Strawberry's extensions. Off
        when the schema has an extension that must see every operation (tracing's operation span)."""
        self.services: Services | None = None
        """Set by the app's lifespan once the payment provider, cache and worker are open."""
        self.persisted_queries: PersistedQueries | None = None
        """Set by the app's lifespan (it needs the cache store)."""
        self.response_cache: ResponseCache | None = None
        """Set by the app's lifespan when response caching is on."""
        self.rate_limit: RateLimit | None = None
        """Set by the app's lifespan when rate limiting is on."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handle(GatewayRequest(scope, receive))
        if self.cost_extension:
            response = with_cost(response)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        if request.method not in ("GET", "POST"):
            return _error(405, "GraphQL is served over GET and POST", headers={"Allow": "GET, POST"})
        if self.graphiql and wants_html(request):
            return render_graphiql(request.url.path)
        media_type = response_media_type(request.headers.get("accept"))
        if media_type is None:
            return _error(406, "Accept application/graphql-response+json or application/json")
        admission: Admission | None = None
        try:
            if self.services is None or self.persisted_queries is None:
                raise RequestError(503, "The gateway is starting", code="SERVICE_UNAVAILABLE")
            principal = await self.authenticator.authenticate(request)
            record = current_record.get()
            if record is not None:
                record.client = principal.client or principal.kind.value
            admission = await self.rate_limit.admit(request, principal) if self.rate_limit is not None else None
            params = await read_params(request, max_body_bytes=self.max_body_bytes, max_batch_size=self.max_batch_size)
        except RequestError as error:
            return _error_response(error, media_type, admission)
        if isinstance(params, list):
            return await self._batch(request, principal, params, media_type, admission)
        response, admission = await self._operation(request, principal, params, media_type, admission)
        return _with_limits(response, admission)

    async def _batch(
        self,
        request: Request,
        principal: Principal,
        batch: list[GraphQLParams],
        media_type: str,
        admission: Admission | None,
    ) -> Response:
        """Run a batch's operations in order, each as if it were a request of its own (so each after the first
        is admitted by the rate limit too); answer the JSON array of their responses, refusals included."""
        bodies = []
        refusal: dict[str, str] = {}  # the rate limit's latest refusal headers (Retry-After), while it refuses
        for index, params in enumerate(batch):
            if index > 0 and self.rate_limit is not None:
                try:
                    admission = await self.rate_limit.admit(request, principal)
                    refusal = {}
                except RequestError as error:
                    bodies.append(bytes(_error_response(error, media_type, admission).body))
                    refusal = error.headers
                    continue
            response, admission = await self._operation(request, principal, params, media_type, admission)
            bodies.append(bytes(response.body))
        batched = Response(
            b"[" + b",".join(bodies) + b"]", headers={"Cache-Control": "no-store"}, media_type=media_type
        )
        batched.headers.update(refusal)
        return _with_limits(batched, admission) if not refusal else batched

    async def _operation(
        self,
        request: Request,
        principal: Principal,
        params: GraphQLParams,
        media_type: str,
        admission: Admission | None,
    ) -> tuple[Response, Admission | None]:
        """One operation, refusals included: trusted document or APQ, then the response cache or an execution.
        Returns the response (without rate-limit headers) and the admission it spent from."""
        assert self.persisted_queries is not None
        try:
            trusted = await self.safelist.resolve(principal.client, params)
            persisted = None
            if trusted is not None:
                query: str | None = trusted
            else:
                persisted = await self.persisted_queries.resolve(params.query, params.extensions)
                query = persisted.query if persisted is not None else params.query
            document = self.documents.get(query) if query is not None else None
            _note_operation(document, params.operation_name, trusted is not None, persisted)
            if admission is not None and self.rate_limit is not None and self.rate_limit.cost_weighted:
                # The operation spends its cost (gateway/limits/cost.py); 0 when it cannot run: 1 is spent already.
                cost = document.cost(params.operation_name, params.variables) if document is not None else 0
                admission = await self.rate_limit.charge(admission, cost)
            served = await self._serve_cached(request, principal, params, document)
            if served is not None:
                produced = served.produced
            else:
                produced = await self._run(request.method, principal, params, document, record_reads=False)
        except RequestError as error:
            return _error_response(error, media_type, admission), admission
        except StoreUnavailableError:  # looking up a trusted document needs the store
            unavailable = RequestError(503, "The store is unavailable", {"Retry-After": "5"}, code=SERVICE_UNAVAILABLE)
            return _error_response(unavailable, media_type, admission), admission

        # A cached answer also proves the document valid: it was stored after a successful execution.
        succeeded = produced.status == 200 if produced is not None else served is not None and served.entry is not None
        if succeeded and persisted is not None and persisted.register is not None:
            assert query is not None
            await self.persisted_queries.register(persisted.register, query)
        if served is not None:
            return self._cached_response(request, served, media_type), admission
        assert produced is not None
        # Built encoded, as a cache hit's are (`_cached_response`): Starlette's own building normalises each header.
        raw = [(b"cache-control", b"no-store")]
        if self.response_cache is not None:
            raw.append((b"x-cache", _STATE_VALUES[CacheState.BYPASS]))
        raw.append((b"content-length", str(len(produced.body)).encode("latin-1")))
        raw.append((b"content-type", media_type.encode("latin-1")))
        return EncodedResponse(produced.body, graphql_status(media_type, produced.status), raw), admission

    async def _serve_cached(
        self, request: Request, principal: Principal, params: GraphQLParams, document: Document | None
    ) -> Served | None:
        """Answer through the response cache when the operation may be cached; None when it may not."""
        cache = self.response_cache
        if cache is None or document is None or not document.valid:
            return None
        operation = document.operation(params.operation_name)
        if operation is None or operation.operation is not GraphQLOperationType.QUERY:
            return None
        policy = document.policy(params.operation_name, self.hints)
        # PRIVATE answers are per principal (never for anonymous); PUBLIC ones are shared by principals whose
        # grants are the same, so a field one of them may not see is never served to them from another's entry.
        identity = principal.identity if policy.scope is CacheScope.PRIVATE else principal.grants_digest
        if not policy.cacheable or identity is None:
            return None
        key = cache.key(document.digest, params.operation_name, params.variables, policy, identity)
        refresh = "no-cache" in request.headers.get("cache-control", "").lower()

        def run() -> Awaitable[Produced]:
            return self._run(request.method, principal, params, document, record_reads=True)

        return await cache.serve(key, policy, run, refresh=refresh)

    async def _run(
        self,
        method: str,
        principal: Principal,
        params: GraphQLParams,
        document: Document | None,
        *,
        record_reads: bool,
    ) -> Produced:
        assert self.services is not None
        store = StoreSession(self.sessionmaker, record_reads=record_reads)
        context = Context(store=store, services=self.services, principal=principal)
        direct = self.direct_queries and self._runs_directly(params, document)
        # `prepared` hands the document to Strawberry's extension, which the direct path does not run.
        with self.changes.collecting() as changes, nullcontext() if direct else prepared(document):
            try:
                if direct:
                    assert document is not None
                    assert document.node is not None
                    result = await execute_query(
                        self.schema,
                        document.node,
                        operation_name=params.operation_name,
                        variables=params.variables,
                        context=context,
                        operation_extensions=params.extensions,
                        plans=document.plans(params.operation_name),
                    )
                    if not self.documents.limits.field_suggestions and result.errors:
                        strip_suggestions(result.errors)  # as PreparedDocuments does
                else:
                    result = await self.schema.execute(
                        document.text if document is not None else None,
                        variable_values=params.variables,
                        context_value=context,
                        operation_name=params.operation_name,
                        allowed_operation_types=GET_OPERATIONS if method == "GET" else POST_OPERATIONS,
                        operation_extensions=params.extensions,
                    )
            except MissingQueryError:
                raise RequestError(400, "No GraphQL query found in the request") from None
            except CannotGetOperationTypeError as error:
                # Operation selection: a GraphQL request error (200 for legacy application/json clients).
                raise RequestError(400, error.as_http_error_reason(), code=BAD_USER_INPUT, graphql=True) from None
            except InvalidOperationTypeError:
                raise RequestError(405, "Mutations must be sent with POST", {"Allow": "POST"}) from None
            finally:
                await store.close()
        if changes.tags and self.response_cache is not None:
            # Before answering: the client's next read, through any instance, must not find the old data.
            await self.response_cache.invalidate(changes.tags)

        payload: dict[str, Any] = {}
        if result.errors:
            payload["errors"] = [format_error(e, expose_internal=self.expose_internal_errors) for e in result.errors]
            note_errors([str((error.get("extensions") or {}).get("code")) for error in payload["errors"]])
        status = 400 if is_request_error(result.data, result.errors) else 200
        if status == 200:
            payload["data"] = result.data
        if result.extensions:
            payload["extensions"] = result.extensions
        storable = status == 200 and not result.errors
        return Produced(status, orjson.dumps(payload), storable, store.reads or ())

    def _runs_directly(self, params: GraphQLParams, document: Document | None) -> bool:
        """Whether the operation runs on graphql-core directly (`schema.execution`): a query in a valid document,
        within the limits. Everything else goes through `Schema.execute`, whose extensions report it or, for a
        mutation, audit it."""
        if document is None or not document.valid:
            return False
        operation = document.operation(params.operation_name)
        return (
            operation is not None
            and operation.operation is GraphQLOperationType.QUERY
            and not self.documents.refusals(document, params.operation_name, params.variables)
        )

    def _cached_response(self, request: Request, served: Served, media_type: str) -> Response:
        entry = served.entry
        if entry is None:
            headers = {"X-Cache": served.state.value, "Cache-Control": "no-store"}
            status = graphql_status(media_type, served.status)
            return Response(served.body, status_code=status, headers=headers, media_type=media_type)
        if request.method == "GET" and etag_matches(request.headers.get("if-none-match"), entry.etag):
            return EncodedResponse(b"", 304, self._validator_headers(served, entry))
        # The hot path of a cache hit: headers built encoded, without Starlette's per-header normalisation.
        raw = self._validator_headers(served, entry)
        raw.append((b"content-type", media_type.encode("latin-1")))
        raw.append((b"content-length", str(len(served.body)).encode("latin-1")))
        return EncodedResponse(served.body, served.status, raw)

    def _validator_headers(self, served: Served, entry: Entry) -> list[tuple[bytes, bytes]]:
        """X-Cache, Cache-Control, ETag, Vary and (for a cached answer) Age, encoded."""
        assert self.response_cache is not None
        control = f"{_SCOPE_NAMES[entry.scope]}, max-age={entry.max_age}"
        if self.response_cache.swr > 0:
            control += f", stale-while-revalidate={int(self.response_cache.swr)}"
        # Even PUBLIC answers depend on who asks (shared only between principals with the same grants).
        headers = [
            (b"x-cache", _STATE_VALUES[served.state]),
            (b"cache-control", control.encode("latin-1")),
            (b"etag", entry.etag.encode("latin-1")),
            (b"vary", VARY_ENCODED),
        ]
        if served.state in _AGED:
            headers.append((b"age", str(int(served.age)).encode("latin-1")))
        return headers


class EncodedResponse(Response):
    """A response given its complete, encoded header list (content type and length included)."""

    def __init__(self, body: bytes, status_code: int, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = raw_headers


def etag_matches(header: str | None, etag: str) -> bool:
    """`If-None-Match` (weak comparison, RFC 9110 13.1.2): `*` or any listed tag equal to `etag`."""
    if not header:
        return False
    candidates = [part.strip().removeprefix("W/") for part in header.split(",")]
    return "*" in candidates or etag in candidates


def _error(
    status: int,
    message: str,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    media_type: str = "application/json",
    extensions: dict[str, Any] | None = None,
) -> Response:
    error = request_error(message) if code is None else request_error(message, code)
    note_errors([error["extensions"]["code"]])
    if extensions:
        error["extensions"] |= extensions
    return Response(orjson.dumps({"errors": [error]}), status_code=status, headers=headers, media_type=media_type)


def _note_operation(document: Document | None, name: str | None, trusted: bool, persisted: Any) -> None:
    """The request's operation label, and the persisted-document hits (trusted, or APQ found by hash)."""
    if trusted:
        metrics.TRUSTED_HITS.inc()
    elif persisted is not None and persisted.register is None:
        metrics.APQ_HITS.inc()
    record = current_record.get()
    if record is not None and document is not None and document.valid:
        operation = document.operation(name)
        if operation is not None and operation.name is not None:
            record.operation = metrics.operation_label(operation.name.value)


def _error_response(error: RequestError, media_type: str, admission: Admission | None) -> Response:
    headers = {"Cache-Control": "no-store"} | (admission.headers if admission is not None else {}) | error.headers
    return _error(
        error.status_for(media_type),
        error.message,
        code=error.code,
        headers=headers,
        media_type=media_type,
        extensions=error.extensions,
    )


def _with_limits(response: Response, admission: Admission | None) -> Response:
    """Every answer to a request the rate limit admitted says how much of the allowance is left."""
    if admission is not None:
        response.headers.update(admission.headers)
    return response
