from __future__ import annotations

from integrations.store.records import CustomerRecord
from resolvers.batching import ByIdLoader


class CustomerByIdLoader(ByIdLoader[CustomerRecord]):
    record = CustomerRecord
