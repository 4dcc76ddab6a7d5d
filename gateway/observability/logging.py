"""Structured logs: structlog for the gateway's own events, and stdlib records (uvicorn, libraries) rendered by
the same processors (`ProcessorFormatter`), as JSON in production or readable console lines in development.

structlog hands its events to stdlib logging (`configure_structlog`, done by the app), so whoever owns the
handlers decides where they go: `configure_logging` (the `gateway serve` process and its workers) installs one
stderr handler with `formatter(...)` on the root logger; tests may attach their own.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog
from structlog.typing import Processor

from gateway.observability.request_id import add_request_id

LogFormat = Literal["json", "console"]

_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    add_request_id,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_structlog() -> None:
    """structlog events become stdlib records carrying the event dict (rendered by `formatter`)."""
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def formatter(log_format: LogFormat, *, colors: bool = False) -> logging.Formatter:
    """Renders structlog events and plain stdlib records alike (request id included when bound)."""
    renderer: Processor = (
        structlog.processors.JSONRenderer() if log_format == "json" else structlog.dev.ConsoleRenderer(colors=colors)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


def configure_logging(
    level: str = "info", log_format: LogFormat = "console", stream: TextIO | None = None, *, access_log: bool = False
) -> None:
    """One handler on the root logger for everything, uvicorn's loggers included (they propagate to it), but
    uvicorn's access log only when asked: uvicorn builds each access line (client address, quoted path) whenever
    its logger has a handler up the tree, whatever the level, so it must not reach the root's."""
    configure_structlog()
    stream = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(log_format, colors=log_format == "console" and stream.isatty()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").propagate = access_log
