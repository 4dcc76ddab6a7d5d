"""Request ids: the client's `X-Request-ID` when it is a sane token, otherwise a fresh one.

`current` holds the id of the request being served; `add_request_id` (a structlog processor) puts it on every log
line written meanwhile. One context variable is cheaper per request than structlog's `bind_contextvars`.
"""

from __future__ import annotations

import random
import re
from contextvars import ContextVar

from starlette.types import Scope
from structlog.typing import EventDict, WrappedLogger

HEADER = b"x-request-id"
MAX_LENGTH = 128
_SANE = re.compile(rb"[A-Za-z0-9._-]{1,128}")

current: ContextVar[str | None] = ContextVar("gateway_request_id", default=None)


def request_id(scope: Scope) -> str:
    """The incoming id (≤ 128 characters of ``[A-Za-z0-9._-]``), else a new random one (32 hex digits)."""
    for name, value in scope["headers"]:
        if name == HEADER:
            if _SANE.fullmatch(value):
                return str(value.decode("ascii"))
            break
    return f"{random.getrandbits(128):032x}"  # unique, not secret: no getrandom() system call per request


def add_request_id(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the current request's id, unless the event carries one already."""
    rid = current.get()
    if rid is not None:
        event_dict.setdefault("request_id", rid)
    return event_dict
