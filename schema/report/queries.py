from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from resolvers.access.rules import REPORTS_READ, ROLE_ADMIN
from resolvers.report import sales
from resolvers.report.intervals import Interval
from schema.cache_control import max_age
from schema.context import Info
from schema.permissions import requires
from schema.report.types import REPORT_MAX_AGE, ReportInterval, SalesReport

_SPANS = ", ".join(f"{span.days} days for {interval}" for interval, span in sales.MAX_SPAN.items())


@strawberry.type
class ReportQuery:
    @strawberry.field(
        description="Sales of one currency between `from` and `to`, per UTC day, ISO week or month (staff with "
        "reports:read, admins). Bad arguments are errors coded INVALID (`to` not after `from`), OUT_OF_RANGE "
        "(too long a period) or INVALID_CURRENCY.",
        directives=[max_age(REPORT_MAX_AGE, private=True), requires(REPORTS_READ, ROLE_ADMIN)],
    )
    async def sales_report(
        self,
        info: Info,
        *,
        from_: Annotated[
            datetime,
            strawberry.argument(
                name="from", description="Start of the period, inclusive (a time without offset is taken as UTC)."
            ),
        ],
        to: Annotated[
            datetime, strawberry.argument(description=f"End of the period, exclusive; at most {_SPANS} after `from`.")
        ],
        group_by: Annotated[
            ReportInterval,  # type: ignore[valid-type]
            strawberry.argument(description="The size of the buckets."),
        ] = Interval.DAY,
        currency: Annotated[str, strawberry.argument(description="ISO 4217 code of the orders to count (e.g. USD).")],
    ) -> SalesReport | None:
        period = sales.sales_period(from_, to, group_by, currency)
        return SalesReport.from_summary(period, await sales.sales_summary(info.context.store, period))
