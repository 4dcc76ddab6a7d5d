"""What every resolver receives as `info.context`: the request's store session, the shared services and the
request's loaders."""

from __future__ import annotations

from dataclasses import dataclass, field

from strawberry.types import Info as StrawberryInfo

from integrations.store.session import StoreSession
from resolvers.access.principal import Principal
from resolvers.loaders import Loaders
from resolvers.services import Services


@dataclass
class Context:
    store: StoreSession
    services: Services
    principal: Principal
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders.create(self.store, self.services)
        self.store.after_write(self.loaders.forget)  # a later field of the same operation reads what was written


Info = StrawberryInfo[Context, None]
