"""`load_all` and `load_both`: `load_many`'s answers and batching, without its gather."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Sequence

import pytest
from aiodataloader import DataLoader

from resolvers.batching import load_all, load_both


class Doubling(DataLoader[int, int]):
    """Doubles its keys; counts batches; a key of 13 or 26 fails the batch it is in (26 after a while)."""

    def __init__(self, max_batch_size: int | None = None) -> None:
        super().__init__(max_batch_size=max_batch_size)
        self.batches: list[list[int]] = []

    async def batch_load_fn(self, keys: Sequence[int]) -> list[int]:
        self.batches.append(list(keys))
        await asyncio.sleep(0.02 if 26 in keys else 0)
        if 13 in keys or 26 in keys:
            raise ValueError("unlucky batch")
        return [key * 2 for key in keys]


async def test_values_come_in_key_order_with_repeats_from_one_batch() -> None:
    loader = Doubling()
    assert await load_all(loader, [3, 1, 3, 2]) == [6, 2, 6, 4]
    assert loader.batches == [[3, 1, 2]]


async def test_loads_queued_before_the_await_share_their_batches() -> None:
    first, second = Doubling(), Doubling()
    one, two = load_all(first, [1, 2]), load_all(second, [5])
    three = load_all(first, [4])  # queued before anything was awaited: same batch as 1 and 2
    assert list(await asyncio.gather(one, two, three)) == [[2, 4], [10], [8]]
    assert first.batches == [[1, 2, 4]]
    assert second.batches == [[5]]


async def test_both_loaders_batch_side_by_side_with_loads_queued_before() -> None:
    first, second = Doubling(), Doubling()
    earlier = load_all(first, [7])  # queued before: same batch as the first loader's keys below
    both = load_both((first, [1, 2, 1]), (second, [5]))
    assert await both == ([2, 4, 2], [10])
    assert await earlier == [14]
    assert first.batches == [[7, 1, 2]]
    assert second.batches == [[5]]
    assert await load_both((first, []), (second, [])) == ([], [])


async def test_an_empty_list_loads_nothing() -> None:
    loader = Doubling()
    assert await load_all(loader, []) == []
    assert loader.batches == []


async def failure_of(load: Awaitable[object]) -> str:
    """The message of the error `load` raises, keeping nothing of it alive (its traceback holds the futures)."""
    try:
        await load
    except ValueError as error:
        return str(error)
    raise AssertionError("no error")


@pytest.mark.parametrize(
    ("keys", "max_batch_size"),
    [([13, 14, 15], None), ([13, 1, 26, 2], 2)],  # one batch; two, the second failing after the first
    ids=["one-batch", "a-later-batch"],
)
async def test_a_failed_batch_raises_and_leaves_no_exception_unretrieved(
    keys: list[int], max_batch_size: int | None
) -> None:
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context["message"]))
    try:
        loader, other = Doubling(max_batch_size), Doubling()
        assert await failure_of(load_all(loader, keys)) == "unlucky batch"
        assert await failure_of(load_both((other, [1]), (loader, keys))) == "unlucky batch"  # the second one fails
        await asyncio.sleep(0.05)  # the later batch fails too
        for _ in range(3):  # an unretrieved exception is reported when its future is collected, once the batch's
            await asyncio.sleep(0)  # task has let go of it
            gc.collect()
        assert await load_all(loader, [14]) == [28]  # a failed batch is not cached
    finally:
        loop.set_exception_handler(previous)
    assert reported == []
