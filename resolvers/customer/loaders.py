from __future__ import annotations

from integrations.store.models import Customer
from resolvers.batching import ByIdLoader


class CustomerByIdLoader(ByIdLoader[Customer]):
    model = Customer
