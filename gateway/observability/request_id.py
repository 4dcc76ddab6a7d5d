"""Request ids: the client's `X-Request-ID` when it is a sane token, otherwise a fresh one."""

from __future__ import annotations

import os
import re

from starlette.types import Scope

HEADER = b"x-request-id"
MAX_LENGTH = 128
_SANE = re.compile(rb"[A-Za-z0-9._-]{1,128}")


def request_id(scope: Scope) -> str:
    """The incoming id (≤ 128 characters of ``[A-Za-z0-9._-]``), else a new random one (32 hex digits)."""
    for name, value in scope["headers"]:
        if name == HEADER:
            if _SANE.fullmatch(value):
                return str(value.decode("ascii"))
            break
    return os.urandom(16).hex()
