"""Public keys for RS256/ES256 tokens, fetched from the identity provider's JWKS URL and cached.

Keys are kept for `ttl` seconds. A token naming a key id the cache does not hold triggers one refresh (keys
rotate), at most once per `min_refresh_interval` so a flood of forged key ids cannot hammer the provider. When
a refresh fails the keys already held keep working; with none held, verification is unavailable (503).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

logger = logging.getLogger("gateway.auth.jwks")

MAX_JWKS_BYTES = 1_000_000


class KeysUnavailableError(Exception):
    """No key can be obtained to verify tokens with (the JWKS endpoint failed and nothing is cached)."""


class JwksKeys:
    def __init__(
        self,
        url: str,
        *,
        ttl: float = 300.0,
        min_refresh_interval: float = 10.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.ttl = ttl
        self.min_refresh_interval = min_refresh_interval
        self.timeout = timeout
        self.clock = clock
        self.fetches = 0
        self.generation = 0
        """Grows whenever the key set changes: what was verified with an older set is verified again."""
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None, algorithm: str) -> Any:
        """The verification key for a token's `kid` and `alg`; None if the provider has no such key."""
        now = self.clock()
        if self._fetched_at is None or now - self._fetched_at >= self.ttl:
            await self._refresh(now)
        found = self._find(kid, algorithm)
        if (
            found is None
            and self._fetched_at is not None
            and self.clock() - self._fetched_at >= self.min_refresh_interval
        ):
            await self._refresh(self.clock())  # an unknown key id: the provider may have rotated its keys
            found = self._find(kid, algorithm)
        return found

    def _find(self, kid: str | None, algorithm: str) -> Any:
        if kid is not None:
            candidate = self._keys.get(kid)
            candidates = [candidate] if candidate is not None else []
        else:  # a token without `kid` is acceptable only when exactly one key fits
            candidates = list(self._keys.values())
        fitting = [k for k in candidates if k.algorithm_name == algorithm]
        return fitting[0].key if len(fitting) == 1 else None

    async def _refresh(self, started: float) -> None:
        async with self._lock:
            if self._fetched_at is not None and self._fetched_at >= started:
                return  # another request refreshed while this one waited
            try:
                keys = await self._fetch()
                if {k: v.key_id for k, v in keys.items()} != {k: v.key_id for k, v in self._keys.items()}:
                    self.generation += 1
                self._keys = keys
            except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as error:
                if not self._keys:
                    raise KeysUnavailableError(f"cannot load signing keys: {error}") from None
                logger.warning("JWKS refresh failed, keeping %d cached keys: %s", len(self._keys), error)
            self._fetched_at = self.clock()

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        self.fetches += 1
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as http:
            response = await http.get(self.url, headers={"Accept": "application/json"})
        response.raise_for_status()
        if len(response.content) > MAX_JWKS_BYTES:
            raise ValueError("the JWKS document is too large")
        document = response.json()
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("the JWKS document has no `keys` list")
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document["keys"]:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry)
            except (jwt.PyJWKError, jwt.InvalidKeyError) as error:
                logger.warning("skipping unusable JWKS key %r: %s", entry.get("kid"), error)
                continue
            keys[key.key_id or f"#{len(keys)}"] = key
        logger.info("loaded %d signing keys from the JWKS", len(keys))
        return keys
