"""What every resolver receives as `info.context`: the request's store session, the shared services and the
request's loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from strawberry.types import Info as StrawberryInfo

from integrations.store.session import StoreSession
from resolvers.access.principal import Principal
from resolvers.loaders import Loaders
from resolvers.services import Services

if TYPE_CHECKING:
    from schema.executor import SharedPlans


@dataclass
class Context:
    store: StoreSession
    services: Services
    principal: Principal
    loaders: Loaders = field(init=False)
    plans: SharedPlans | None = None
    """The operation's plans kept across its requests, when it runs with them (`schema.execution`): look-ahead
    answers (`schema.selection`) are kept there too."""

    def __post_init__(self) -> None:
        self.loaders = Loaders.create(self.store, self.services)
        self.store.after_write(self.loaders.forget)  # a later field of the same operation reads what was written


Info = StrawberryInfo[Context, None]
