"""Automatic persisted queries, as Apollo Client's persisted-query link and urql's persistedExchange speak them.

A client first sends only ``extensions.persistedQuery = {version: 1, sha256Hash}``. A known hash runs the
stored document; an unknown one answers ``PersistedQueryNotFound`` (code ``PERSISTED_QUERY_NOT_FOUND``, HTTP
200, not cacheable) and the client retries with the full query and the hash. The gateway checks the hash,
runs the query, and stores the document (in the cache store, with a TTL) only once it parsed and validated.
A GET carrying only a hash is a short, CDN-cacheable URL.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from integrations.cache.base import Cache

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
UNCACHEABLE = {"Cache-Control": "private, no-cache, must-revalidate"}
_SHA256 = re.compile(r"[0-9a-f]{64}")


class PersistedQueryError(Exception):
    """Why a persisted-query request cannot run: the status, message and code the client expects."""

    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


@dataclass(frozen=True)
class Resolved:
    query: str
    register: str | None
    """The hash to store the query under once it has validated (None when it came from the store)."""


class PersistedQueries:
    def __init__(self, cache: Cache, *, ttl: float, enabled: bool = True) -> None:
        self._cache = cache
        self._ttl = ttl
        self.enabled = enabled

    async def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> Resolved | None:
        """The document to run for a request with `extensions.persistedQuery`; None for an ordinary request."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return None
        if not self.enabled:
            raise PersistedQueryError(200, "PersistedQueryNotSupported", NOT_SUPPORTED, UNCACHEABLE)
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise PersistedQueryError(400, "Unsupported persisted query version", "BAD_REQUEST")
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise PersistedQueryError(400, "persistedQuery.sha256Hash must be 64 lower-case hex digits", "BAD_REQUEST")
        if query is not None:
            if hashlib.sha256(query.encode()).hexdigest() != digest:
                raise PersistedQueryError(400, "provided sha does not match query", "BAD_REQUEST")
            return Resolved(query=query, register=digest)
        stored = await self._cache.get(_key(digest))
        if stored is None:
            raise PersistedQueryError(200, "PersistedQueryNotFound", NOT_FOUND, UNCACHEABLE)
        return Resolved(query=stored.decode(), register=None)

    async def register(self, digest: str, query: str) -> None:
        await self._cache.set(_key(digest), query.encode(), self._ttl)


def _key(digest: str) -> str:
    return f"apq:{digest}"
