"""A real OTLP/HTTP trace receiver on a free 127.0.0.1 port, run by uvicorn inside the test's event loop.

::

    async with OTLPCollector() as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        ...  # run the gateway, send requests, stop it (its tracer provider's shutdown exports what is left)
        assert [span.name for span in collector.spans] == [...]

``POST /v1/traces`` bodies are decoded with opentelemetry-proto's `ExportTraceServiceRequest` (gzip or deflate
when the exporter compresses) into `CollectedSpan`s; the request headers are kept in `exports`.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.live_server import LoopbackServer

SERVER = 2
CLIENT = 3
"""`CollectedSpan.kind` values (OTLP's SPAN_KIND_SERVER, SPAN_KIND_CLIENT); 1 is INTERNAL."""


@dataclass(frozen=True)
class CollectedSpan:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root span
    name: str
    kind: int
    attributes: Mapping[str, Any]
    resource: Mapping[str, Any]
    status_code: int  # 0 unset, 1 ok, 2 error
    status_message: str


class OTLPCollector(LoopbackServer):
    """The base URL (`url`) is what ``OTEL_EXPORTER_OTLP_ENDPOINT`` takes (the exporter adds ``/v1/traces``)."""

    def __init__(self) -> None:
        self.spans: list[CollectedSpan] = []
        self.exports: list[Mapping[str, str]] = []  # each export request's headers (lower-case names)
        super().__init__(Starlette(routes=[Route("/v1/traces", self._receive, methods=["POST"])]))

    def trace(self, trace_id: str) -> list[CollectedSpan]:
        return [span for span in self.spans if span.trace_id == trace_id]

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        encoding = request.headers.get("content-encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        if request.headers.get("content-type") != "application/x-protobuf":
            return Response(status_code=415)
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        self.exports.append({name.lower(): value for name, value in request.headers.items()})
        for resource_spans in export.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        CollectedSpan(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            name=span.name,
                            kind=span.kind,
                            attributes=_attributes(span.attributes),
                            resource=resource,
                            status_code=span.status.code,
                            status_message=span.status.message,
                        )
                    )
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)
