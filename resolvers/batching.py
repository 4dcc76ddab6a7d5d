"""Building blocks for `<Thing>By<Key>Loader`s: one statement per batch (`select_by_keys`), results in key order."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from aiodataloader import DataLoader

from integrations.store.records import KEYS, R, select_by_keys
from integrations.store.session import StoreSession

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
J = TypeVar("J", bound=Hashable)
W = TypeVar("W")


# `select_by_keys` binds a batch's keys as one parameter (PostgreSQL's array, SQLite's JSON array); the loaders that
# build an `IN (...)` bind one per key, and PostgreSQL accepts at most 32,767 per statement, SQLite 32,766: 1,000
# keeps those far below either limit, and every batch's rows bounded.
MAX_BATCH_SIZE = 1000


def one_per_key(keys: Sequence[K], rows: Iterable[V], key_of: Callable[[V], Hashable]) -> list[V | None]:
    """Align `rows` to `keys`: the row whose key matches, or None for a key with no row."""
    by_key = {key_of(row): row for row in rows}
    return [by_key.get(key) for key in keys]


def many_per_key(keys: Sequence[K], rows: Iterable[V], key_of: Callable[[V], Hashable]) -> list[list[V]]:
    """Group `rows` under `keys` in their original order: one (possibly empty) list per key."""
    grouped: defaultdict[Hashable, list[V]] = defaultdict(list)
    for row in rows:
        grouped[key_of(row)].append(row)
    return [grouped.get(key, []) for key in keys]


def load_all(loader: DataLoader[K, V], keys: Iterable[K]) -> Awaitable[list[V]]:
    """`loader.load_many(keys)` without its gather: the keys are queued at once, as there, so batches queued before
    the await still run together; the values are then read in key order. A gather adds a callback and a trip
    through the event loop per key (about 1 µs), where awaiting futures already done costs nothing."""
    return _in_order([loader.load(key) for key in keys])


async def load_both(
    first: tuple[DataLoader[K, V], Iterable[K]], second: tuple[DataLoader[J, W], Iterable[J]]
) -> tuple[list[V], list[W]]:
    """`load_all` of two loaders at once: both batches are queued before either is awaited, so they run side by side,
    and neither needs a task of its own (as a gather of two `load_all`s would: two tasks and two more trips through
    the event loop)."""
    (loader, keys), (other, other_keys) = first, second
    queued: list[asyncio.Future[Any]] = [loader.load(key) for key in keys]
    size = len(queued)
    queued += [other.load(key) for key in other_keys]
    values = await _in_order(queued)
    return values[:size], values[size:]


async def _in_order(futures: list[asyncio.Future[V]]) -> list[V]:
    try:
        return [await future for future in futures]
    except BaseException:
        for future in futures:  # as a gather would: no "exception was never retrieved" for the others, now or later
            if future.done():
                _retrieve(future)
            else:
                future.add_done_callback(_retrieve)
        raise


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class Primer:
    """Values a loader read for other loaders (a join reads orders with their customers), handed to theirs: at once
    to one already made, else when it is made (`Loaders` tells): a request that never asks them makes no loader.

    Only loaders of the `targets` classes are kept here: a loader that holds the primer must not be one of them
    (the two would hold each other, a reference cycle)."""

    def __init__(self, targets: frozenset[type[DataLoader[Any, Any]]]) -> None:
        self.targets = targets
        self._loaders: dict[type[DataLoader[Any, Any]], DataLoader[Any, Any]] = {}
        self._pending: dict[type[DataLoader[Any, Any]], list[tuple[Any, Any]]] = {}

    def prime(self, cls: type[DataLoader[K, V]], key: K, value: V) -> None:
        """`DataLoader.prime` of the request's `cls` loader, now or when it is made."""
        assert cls in self.targets, f"{cls.__name__} is not primed through this primer"
        loader = self._loaders.get(cls)
        if loader is not None:
            loader.prime(key, value)
        else:
            self._pending.setdefault(cls, []).append((key, value))

    def made(self, cls: type[DataLoader[Any, Any]], loader: DataLoader[Any, Any]) -> None:
        """The request's `cls` loader was made: primed with what was kept for it (the first value of a key wins, as
        `prime` has it), and with later values at once."""
        if cls not in self.targets:
            return
        self._loaders[cls] = loader
        for key, value in self._pending.pop(cls, ()):
            loader.prime(key, value)

    def forget(self) -> None:
        """Drop what was kept for loaders not made yet (after a write, as the loaders forget theirs)."""
        self._pending.clear()


class BatchLoader(DataLoader[K, V]):
    """A DataLoader over the request's store with the project's batch cap; subclasses implement `batch_load_fn`."""

    def __init__(self, store: StoreSession, **kwargs: Any) -> None:
        super().__init__(max_batch_size=MAX_BATCH_SIZE, **kwargs)
        self.store = store


class ByIdLoader(BatchLoader[int, R | None]):
    """Records of a table by primary key (`integrations/store/records.py`): one statement per batch
    (`select_by_keys`), None for a missing id."""

    record: type[R]

    async def batch_load_fn(self, keys: Sequence[int]) -> list[R | None]:
        statement = select_by_keys(self.record, "id", self.store.dialect)
        rows = await self.store.records(statement, self.record, {KEYS: list(keys)})
        return one_per_key(keys, rows, lambda row: row.id)
