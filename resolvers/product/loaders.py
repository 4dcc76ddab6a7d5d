from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select

from integrations.store.models import Product
from integrations.store.session import StoreSession
from resolvers.batching import BatchLoader, one_per_key


class ProductByIdLoader(BatchLoader[int, Product | None]):
    def __init__(self, store: StoreSession) -> None:
        super().__init__()
        self.store = store

    async def batch_load_fn(self, keys: Sequence[int]) -> list[Product | None]:
        rows = await self.store.scalars(select(Product).where(col(Product.id).in_(keys)))
        return one_per_key(keys, rows, lambda row: row.id)
