"""`DirectReadSpans`: a direct read's span (`integrations/store/direct.py`) looks like the span the SQLAlchemy
instrumentation makes for the same statement run through SQLAlchemy, on either database; a failed one is marked
as an error without the driver's message (which may quote parameters)."""

from __future__ import annotations

from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.observability.tracing import DirectReadSpans
from integrations.store.records import KEYS, CustomerRecord, select_by_keys
from integrations.store.session import StoreSession


async def test_a_direct_read_span_matches_sqlalchemys_and_hides_error_messages(
    engine: AsyncEngine, store: StoreSession
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    usage = NoOpMeterProvider().get_meter("test").create_up_down_counter("db.client.connections.usage")
    sql = EngineTracer(provider.get_tracer("test"), engine.sync_engine, usage, enable_commenter=False)  # type: ignore[no-untyped-call]
    spans = DirectReadSpans(sql, engine)
    statement = select_by_keys(CustomerRecord, "id", engine.dialect.name)
    async with engine.connect() as connection:  # through SQLAlchemy: its instrumentation's span
        await connection.execute(statement, {KEYS: [1]})
    (through_sqlalchemy,) = exporter.get_finished_spans()
    attributes = dict(through_sqlalchemy.attributes or {})
    text = str(attributes.get("db.statement", attributes.get("db.query.text")))

    spans(text, 0.002, None)
    spans(text, 0.001, ValueError("invalid input for query argument $1: [4242]"))

    _, direct, failed = exporter.get_finished_spans()
    for span in (direct, failed):
        assert span.name == through_sqlalchemy.name
        assert span.kind == SpanKind.CLIENT
        assert dict(span.attributes or {}) == attributes
        assert span.end_time is not None
        assert span.start_time is not None
    assert direct.end_time - direct.start_time == 2_000_000  # type: ignore[operator]
    assert direct.status.status_code == StatusCode.UNSET
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.status.description == "ValueError"
    provider.shutdown()
