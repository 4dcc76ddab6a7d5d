"""What one request did, gathered while it runs: the endpoint, SQL events and upstream calls write here.

`current` holds the request's `Record` (a mutable object, so tasks the request spawns, which copy the context,
still add to the same one); outside a request it is None and nothing is recorded.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field

ANONYMOUS_OPERATION = "-"


@dataclass(slots=True)
class Record:
    operation: str = ANONYMOUS_OPERATION
    """The operation name as a metric label: "-" when unnamed or unknown (see `metrics.operation_label`)."""
    client: str | None = None
    """The API key's client, or the principal's kind (never a subject, token or email)."""
    error_codes: list[str] = field(default_factory=list)
    sql_statements: int = 0
    upstream_calls: int = 0
    started: float = field(default_factory=time.perf_counter)


current: ContextVar[Record | None] = ContextVar("gateway_request_record", default=None)


def note_errors(codes: list[str]) -> None:
    record = current.get()
    if record is not None:
        record.error_codes.extend(codes)
