from __future__ import annotations

from integrations.store.records import ProductRecord
from resolvers.batching import ByIdLoader


class ProductByIdLoader(ByIdLoader[ProductRecord]):
    record = ProductRecord
