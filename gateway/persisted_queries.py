"""Automatic persisted queries, as Apollo Client's persisted-query link and urql's persistedExchange speak them.

A client first sends only ``extensions.persistedQuery = {version: 1, sha256Hash}``. A known hash runs the
stored document; an unknown one answers ``PersistedQueryNotFound`` (code ``PERSISTED_QUERY_NOT_FOUND``, HTTP
200, not cacheable) and the client retries with the full query and the hash. The gateway checks the hash,
runs the query, and stores the document (in the cache store, with a TTL) only once it parsed and validated.
A GET carrying only a hash is a short, CDN-cacheable URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gateway.request import RequestError
from integrations.cache.base import Cache
from resolvers.trusted_documents import document_hash

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
UNCACHEABLE = {"Cache-Control": "private, no-cache, must-revalidate"}
_SHA256 = re.compile(r"[0-9a-f]{64}")


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
            raise RequestError(200, "PersistedQueryNotSupported", UNCACHEABLE, code=NOT_SUPPORTED)
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise RequestError(400, "Unsupported persisted query version")
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise RequestError(400, "persistedQuery.sha256Hash must be 64 lower-case hex digits")
        if query is not None:
            if document_hash(query) != digest:
                raise RequestError(400, "provided sha does not match query")
            return Resolved(query=query, register=digest)
        stored = await self._cache.get(_key(digest))
        if stored is None:
            raise RequestError(200, "PersistedQueryNotFound", UNCACHEABLE, code=NOT_FOUND)
        return Resolved(query=stored.decode(), register=None)

    async def register(self, digest: str, query: str) -> None:
        await self._cache.set(_key(digest), query.encode(), self._ttl)


def _key(digest: str) -> str:
    return f"apq:{digest}"
