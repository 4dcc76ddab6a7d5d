from __future__ import annotations

from integrations.store.models import Product
from resolvers.batching import ByIdLoader


class ProductByIdLoader(ByIdLoader[Product]):
    model = Product
