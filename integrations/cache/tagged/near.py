"""A near cache: this process's copy of recently read entries in front of the Redis tagged store.

A cache hit through Redis costs a network round trip, which is most of what a hit costs. Entries read (or
stored) here are kept in process for at most `ttl` seconds, and every instance drops its whole copy as soon as
any instance invalidates anything: the invalidation script publishes on `{prefix}{rc}:inv` in the same atomic
step that deletes the entries, and each instance listens on a connection of its own.

Why a read after a mutation is still fresh on every instance:

- The instance that invalidates drops its own copy before `invalidate` returns, so before it answers.
- It also waits (briefly: `ANNOUNCED`) until its own listener has received the announcement. Redis writes a
  message to all of a channel's subscribers at once, so by then it is on its way to every other instance too,
  ahead of the client who will learn of the mutation only from this instance's answer, and ask again.
- On another instance, the announcement counts from the moment the event loop has read it, before the listener
  has processed it: a lookup that finds unread data on the listening connection goes to Redis instead
  (`Invalidations.pending`). A request's bytes and an announcement that arrived before them are read in the same
  turn of the event loop or in order, and the request runs after both are read.
- An entry read from Redis is kept only if no invalidation was seen while it was being read (`_epoch`), so a
  value that was current when Redis sent it but invalidated before it arrived is never kept.
- While the listener is not subscribed (start-up, Redis away, a dropped connection) the near cache is off and
  empty: messages sent meanwhile are lost, so nothing read before is trusted after.

What remains is bounded by `ttl`: a writer that does not publish (an older gateway during a rolling deploy), or
a message slower than a client's whole round trip through another instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from typing import NamedTuple

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError

from integrations.cache.redis import FAILURES
from integrations.cache.tagged.redis import RedisTaggedStore

logger = logging.getLogger("integrations.cache.near")

RECONNECT_DELAY = 1.0
ANNOUNCED = 0.1
"""Seconds an invalidating instance waits at most for its own announcement to come back (then answers anyway)."""
HEALTH_CHECK_INTERVAL = 5.0
"""Seconds between PINGs on an idle listening connection, so a silently dead one is noticed."""


class Invalidations:
    """Listens to the invalidation channel; calls `on_change` for every message and on every (re)subscription,
    and says whether it is subscribed (`live`) and whether messages wait unread (`pending`)."""

    def __init__(self, client: Redis, channel: str, on_change: Callable[[], None]) -> None:
        self._client = client
        self._channel = channel
        self._on_change = on_change
        self._pubsub: PubSub | None = None
        self._seen = 0
        """The highest generation announced since the subscription started."""
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.live = False
        self.subscribed = asyncio.Event()
        """Set whenever a subscription starts (tests wait on it)."""

    async def pending(self) -> bool:
        """Whether data has arrived on the listening connection that the listener has not processed yet."""
        pubsub = self._pubsub
        connection = pubsub.connection if pubsub is not None else None
        if connection is None:
            return True
        try:
            return await connection.can_read()
        except FAILURES:
            return True

    async def announced(self, generation: int) -> None:
        """Return once the announcement of `generation` has been received (at once when not subscribed)."""
        if not self.live or self._seen >= generation:
            return
        waiter = asyncio.get_running_loop().create_future()
        entry = (generation, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _announce(self, generation: int) -> None:
        self._seen = max(self._seen, generation)
        for entry in [entry for entry in self._waiters if entry[0] <= generation]:
            self._waiters.remove(entry)
            if not entry[1].done():
                entry[1].set_result(None)

    def _release_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        for _, waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def run(self) -> None:
        """Listen until cancelled, resubscribing after every failure."""
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except FAILURES as exc:
                logger.warning("response cache: invalidation listener lost (%s); near cache off", type(exc).__name__)
            finally:
                self._down()
            await asyncio.sleep(RECONNECT_DELAY)

    async def _listen(self) -> None:
        self._pubsub = pubsub = self._client.pubsub()
        await pubsub.subscribe(self._channel)
        awaiting_pong = False
        while True:
            message = await pubsub.get_message(timeout=HEALTH_CHECK_INTERVAL)
            if message is None:
                if awaiting_pong:  # a connection that died without a word (no FIN, no RST)
                    raise RedisConnectionError("the invalidation channel did not answer a PING")
                await pubsub.ping()
                awaiting_pong = True
            elif message["type"] == "pong":
                awaiting_pong = False
            elif message["type"] == "subscribe":
                self._on_change()  # whatever was published before now was missed: start empty
                self._seen = 0
                self.live = True
                self.subscribed.set()
            elif message["type"] == "message":
                self._on_change()
                self._announce(_generation(message["data"]))

    def _down(self) -> None:
        self.live = False
        self._release_waiters()
        self.subscribed.clear()
        self._on_change()
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            task = asyncio.get_running_loop().create_task(pubsub.aclose())  # type: ignore[no-untyped-call]
            task.add_done_callback(_ignore_result)


def _generation(data: object) -> int:
    try:
        return int(data) if isinstance(data, bytes | str | int) else 0
    except ValueError:
        return 0


def _ignore_result(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


class _Near(NamedTuple):
    expires: float
    value: bytes


class NearCachedStore:
    """The Redis tagged store with a near cache in front of its reads (see the module's docstring)."""

    def __init__(
        self,
        inner: RedisTaggedStore,
        listener_client: Redis,
        *,
        ttl: float,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        self._ttl = ttl
        self._max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, _Near] = OrderedDict()
        self._bytes = 0
        self._epoch = 0
        """Counts what emptied the near cache: invalidations seen (here or by any instance), subscriptions."""
        self._listener_client = listener_client
        self.invalidations = Invalidations(listener_client, inner.channel, self._clear)
        self._task: asyncio.Task[None] | None = None
        self.hits = 0

    @property
    def failures(self) -> int:
        return self._inner.failures

    @failures.setter
    def failures(self, value: int) -> None:
        self._inner.failures = value

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.invalidations.run())

    async def generation(self) -> int | None:
        return await self._inner.generation()

    async def get(self, key: str) -> bytes | None:
        if self.invalidations.live and not await self.invalidations.pending():
            near = self._entries.get(key)
            if near is not None:
                if near.expires > self._clock():
                    self._entries.move_to_end(key)
                    self.hits += 1
                    return near.value
                self._drop(key)
        epoch = self._epoch
        value = await self._inner.get(key)
        if value is not None and epoch == self._epoch:
            self._keep(key, value)
        return value

    async def put(self, key: str, value: bytes, ttl: float, tags: Collection[str], since: int) -> bool:
        epoch = self._epoch
        stored = await self._inner.put(key, value, ttl, tags, since)
        if stored and epoch == self._epoch:
            self._keep(key, value, min(ttl, self._ttl))
        return stored

    async def invalidate(self, tags: Collection[str]) -> bool:
        self._clear()  # before this instance answers, whatever Redis says
        try:
            generation = await self._inner.invalidate_at(tags)
            if generation:
                try:
                    async with asyncio.timeout(ANNOUNCED):
                        await self.invalidations.announced(generation)
                except TimeoutError:
                    logger.debug("response cache: invalidation %d not announced in time", generation)
            return generation is not None
        finally:
            self._clear()  # an entry read while the script ran may predate it

    def lock(self, key: str, ttl: float) -> contextlib.AbstractAsyncContextManager[bool]:
        return self._inner.lock(key, ttl)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._listener_client.aclose()
        await self._inner.aclose()

    def _keep(self, key: str, value: bytes, ttl: float | None = None) -> None:
        if not self.invalidations.live or len(value) > self._max_bytes // 4:
            return
        self._drop(key)
        self._entries[key] = _Near(self._clock() + (self._ttl if ttl is None else ttl), value)
        self._bytes += len(value)
        while self._bytes > self._max_bytes:
            _, near = self._entries.popitem(last=False)
            self._bytes -= len(near.value)

    def _drop(self, key: str) -> None:
        near = self._entries.pop(key, None)
        if near is not None:
            self._bytes -= len(near.value)

    def _clear(self) -> None:
        self._epoch += 1
        self._entries.clear()
        self._bytes = 0


@asynccontextmanager
async def near_cached(store: NearCachedStore) -> AsyncIterator[NearCachedStore]:
    """Listen for invalidations while the block runs; close the store after."""
    store.start()
    try:
        yield store
    finally:
        await store.aclose()
