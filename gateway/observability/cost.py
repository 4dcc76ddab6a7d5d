"""The development cost extension: `extensions.cost` on each GraphQL answer, for GraphiQL users.

`{sqlStatements, upstreamCalls, cacheStatus, durationMs}` of this request, spliced into the body as it is sent,
so the response cache never stores it. On in development unless `GATEWAY_COST_EXTENSION=false`; never in production.
"""

from __future__ import annotations

import time

import orjson
from starlette.responses import Response

from gateway.observability.record import current


def with_cost(response: Response) -> Response:
    """`response` with the cost in its `extensions`, or as it is when it is not a JSON object answer."""
    record = current.get()
    content_type = response.headers.get("content-type", "")
    if record is None or not response.body or "json" not in content_type:
        return response
    try:
        payload = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return response
    if not isinstance(payload, dict):  # a batch: each operation's cost is not known apart
        return response
    extensions = payload.setdefault("extensions", {})
    extensions["cost"] = {
        "sqlStatements": record.sql_statements,
        "upstreamCalls": record.upstream_calls,
        "cacheStatus": response.headers.get("x-cache"),
        "durationMs": round((time.perf_counter() - record.started) * 1000, 3),
    }
    headers = {name: value for name, value in response.headers.items() if name != "content-length"}
    return Response(orjson.dumps(payload), status_code=response.status_code, headers=headers)
