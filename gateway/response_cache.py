"""Whole-response caching of queries, shared by every gateway instance through the tagged store (Redis).

- **What**: successful query results (no errors) whose cache policy (`cache_policy.py`) allows it; never
  mutations or introspection. PRIVATE results only for an authenticated principal, and keyed by it.
- **Key**: schema version, normalised document hash, operation name, canonical variables, scope + principal
  (PRIVATE) or the principal's grants (PUBLIC: principals allowed the same fields share entries).
- **Invalidation**: each entry is tagged with every row and listing its execution read (`integrations/store/
  tags.py`); committed writes announce their tags and `invalidate` drops the entries in the shared store, so
  every instance sees it. A write that fails to invalidate (store down) is retried before this instance reads
  the cache again; until then it serves uncached.
- **Races**: a fill records the store's generation before executing and the store refuses it if any of its
  tags was invalidated since, so a result read before a write can never be stored after that write's
  invalidation.
- **Stampedes**: concurrent misses for one key in one process run once (single flight); across processes a
  short lock lets one execute while the others wait for its entry (up to `lock_wait`, then run themselves).
- **Stale-while-revalidate** (optional): for `swr` seconds past its max-age an entry is served as STALE while
  one background execution refreshes it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import orjson

from gateway.cache_policy import CachePolicy, Scope
from integrations.cache.tagged.base import TaggedStore

logger = logging.getLogger("gateway.response_cache")

FORMAT = "1"
"""Bumped when the entry encoding or key derivation changes, like the schema version."""


_SCOPES = {scope.value: scope for scope in Scope}


DECODED_ENTRIES = 64
"""Decoded entries kept by `ResponseCache` (each holds its value: at most this many bodies stay alive)."""


class CacheState(StrEnum):
    HIT = "HIT"
    MISS = "MISS"
    STALE = "STALE"
    BYPASS = "BYPASS"


class Entry(NamedTuple):  # NamedTuples, not frozen dataclasses, on the hit path: built for every request
    body: bytes
    etag: str
    created: float
    """Wall-clock time of the execution (instances share entries, so not a monotonic clock)."""
    max_age: int
    scope: Scope

    def encode(self) -> bytes:
        return orjson.dumps([self.created, self.max_age, self.scope.value, self.etag]) + b"\n" + self.body

    @classmethod
    def decode(cls, value: bytes) -> Entry | None:
        header, _, body = value.partition(b"\n")
        try:
            created, max_age, scope, etag = orjson.loads(header)
            return cls(body, str(etag), float(created), int(max_age), _SCOPES[scope])
        except (orjson.JSONDecodeError, ValueError, TypeError, KeyError):
            return None

    def age(self, now: float) -> float:
        return max(0.0, now - self.created)


@dataclass(frozen=True)
class Produced:
    """What one execution gave: the response body and status, and what it read (for invalidation)."""

    status: int
    body: bytes
    storable: bool
    """A successful result (HTTP 200, no `errors`)."""
    tags: Collection[str]


class Served(NamedTuple):
    state: CacheState
    entry: Entry | None
    """The cached form of the answer (with its ETag and policy); None when the answer is not cacheable."""
    produced: Produced | None = None
    """This request's own execution, when it ran one."""
    age: float = 0.0

    @property
    def status(self) -> int:
        return self.produced.status if self.produced is not None else 200

    @property
    def body(self) -> bytes:
        if self.produced is not None:
            return self.produced.body
        assert self.entry is not None
        return self.entry.body


Run = Callable[[], Awaitable[Produced]]


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


class ResponseCache:
    def __init__(
        self,
        store: TaggedStore,
        *,
        schema_version: str,
        swr: float = 0.0,
        lock_ttl: float = 10.0,
        lock_wait: float = 2.0,
        poll_interval: float = 0.02,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.version = f"{FORMAT}:{schema_version}"
        self.swr = swr
        self.lock_ttl = lock_ttl
        self.lock_wait = lock_wait
        self.poll_interval = poll_interval
        self.clock = clock
        self.stats: Counter[str] = Counter()
        self._flights: dict[str, asyncio.Future[Served | None]] = {}
        self._pending: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._decoded: dict[int, tuple[bytes, Entry]] = {}
        """Entries decoded from values the store handed out, by the value's identity: a near or in-memory store
        hands out the same object on every hit, which then skips decoding (and copying the body out)."""

    def key(
        self,
        digest: str,
        operation_name: str | None,
        variables: dict[str, Any] | None,
        policy: CachePolicy,
        identity: str,
    ) -> str:
        """`identity`: the principal's for PRIVATE entries, the digest of its grants for PUBLIC ones."""
        scope = f"{policy.scope.value}:{identity}"
        canonical = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
        material = b"\0".join(
            (self.version.encode(), digest.encode(), (operation_name or "").encode(), canonical, scope.encode())
        )
        return hashlib.blake2b(material, digest_size=20).hexdigest()

    async def serve(self, key: str, policy: CachePolicy, run: Run, *, refresh: bool = False) -> Served:
        """The cached answer for `key`, or `run`'s (stored for the next request when it succeeds)."""
        if not refresh:
            entry = await self._read(key)
            if entry is not None:
                age = entry.age(self.clock())
                if age < entry.max_age:
                    self.stats["hit"] += 1
                    return Served(CacheState.HIT, entry, age=age)
                if age < entry.max_age + self.swr:
                    self.stats["stale"] += 1
                    self._revalidate(key, policy, run)
                    return Served(CacheState.STALE, entry, age=age)
        flight = self._flights.get(key)
        if flight is not None:
            shared = await asyncio.shield(flight)
            if shared is not None and shared.entry is not None:
                self.stats["coalesced"] += 1
                return Served(CacheState.HIT, shared.entry)
            # The leader's answer was not cacheable (an error may be specific to it): run our own.
            return await self._fill(key, policy, run)
        return await self._lead(key, policy, run)

    async def invalidate(self, tags: Collection[str]) -> None:
        """Drop every entry tagged with any of `tags`, in the shared store (so in every instance)."""
        if not tags and not self._pending:
            return
        pending = self._pending | set(tags)
        if await self.store.invalidate(pending):
            self._pending -= pending
            self.stats["invalidations"] += 1
        else:
            self._pending = pending
            self.stats["invalidation_failures"] += 1
            logger.warning(
                "response cache: could not invalidate %d tags; bypassing the cache until it can", len(pending)
            )

    async def drain(self) -> None:
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _read(self, key: str) -> Entry | None:
        if self._pending:  # an earlier invalidation failed: cached entries may be stale until it succeeds
            await self.invalidate(())
            if self._pending:
                self.stats["bypass_unsynced"] += 1
                return None
        value = await self.store.get(key)
        if value is None:
            return None
        decoded = self._decoded.get(id(value))
        if decoded is not None and decoded[0] is value:  # held here, so its id cannot have been reused
            return decoded[1]
        entry = Entry.decode(value)
        if entry is not None:
            if len(self._decoded) >= DECODED_ENTRIES:
                del self._decoded[next(iter(self._decoded))]  # the oldest
            self._decoded[id(value)] = (value, entry)
        return entry

    async def _lead(self, key: str, policy: CachePolicy, run: Run) -> Served:
        future: asyncio.Future[Served | None] = asyncio.get_running_loop().create_future()
        self._flights[key] = future
        served: Served | None = None
        try:
            served = await self._fill(key, policy, run)
            return served
        finally:
            del self._flights[key]
            future.set_result(served)

    async def _fill(self, key: str, policy: CachePolicy, run: Run) -> Served:
        since = await self.store.generation()
        async with self.store.lock(key, self.lock_ttl) as mine:
            if not mine:  # another instance is executing this key: wait for its entry
                entry = await self._wait_for_entry(key)
                if entry is not None:
                    self.stats["coalesced"] += 1
                    return Served(CacheState.HIT, entry)
            produced = await run()
        self.stats["miss"] += 1
        if not produced.storable:
            return Served(CacheState.MISS, None, produced)
        entry = Entry(produced.body, etag_of(produced.body), self.clock(), policy.max_age, policy.scope)
        if since is not None and not self._pending:
            ttl = policy.max_age + self.swr
            stored = await self.store.put(key, entry.encode(), ttl, produced.tags, since)
            self.stats["stored" if stored else "store_refused"] += 1
        return Served(CacheState.MISS, entry, produced)

    async def _wait_for_entry(self, key: str) -> Entry | None:
        deadline = time.monotonic() + self.lock_wait
        while time.monotonic() < deadline:
            await asyncio.sleep(self.poll_interval)
            value = await self.store.get(key)
            if value is not None:
                return Entry.decode(value)
        return None

    async def _refresh(self, key: str, policy: CachePolicy, run: Run) -> None:
        try:
            await self._lead(key, policy, run)
        except Exception:
            logger.exception("response cache: background revalidation failed")

    def _revalidate(self, key: str, policy: CachePolicy, run: Run) -> None:
        if key in self._flights:
            return
        task = asyncio.get_running_loop().create_task(self._refresh(key, policy, run))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
