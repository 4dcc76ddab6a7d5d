"""What a principal may see and do: the gateway's authorization rules, in one module.

Field and mutation requirements are declared in the schema (`@requires(anyOf: [...])`, see
`schema/permissions.py`) as grants: a scope (`orders:read`), a role (`role:customer`) or `owner` - the
principal is the customer the object belongs to. Rows are filtered here too: an order or customer the principal
may not see behaves exactly like one that does not exist (no existence leak through `node`, `order`...).

| grant             | who holds it                       | what it opens                                    |
|-------------------|------------------------------------|--------------------------------------------------|
| `customers:read`  | staff                              | every customer, their PII                        |
| `customers:write` | staff                              | createCustomer, updateCustomer                   |
| `orders:read`     | staff                              | every order                                      |
| `orders:write`    | staff                              | placeOrder / cancelOrder for any customer        |
| `payments:write`  | staff (finance)                    | refundOrder                                      |
| `customers:export`| staff (privacy)                    | exportCustomerData for any customer              |
| `customers:erase` | staff (privacy)                    | eraseCustomer                                    |
| `audit:read`      | staff (security)                   | auditEvents                                      |
| `reports:read`    | staff (finance, management)        | salesReport                                      |
| `role:customer`   | a customer's token                 | their own customer, orders; ordering for itself, |
|                   |                                    | exporting its own data                           |
| `role:admin`      | administrators                     | everything, including createProduct/updateProduct |
"""

from __future__ import annotations

from collections.abc import Iterable

from integrations.errors import ForbiddenError
from resolvers.access.principal import Principal

OWNER = "owner"
CUSTOMERS_READ = "customers:read"
CUSTOMERS_WRITE = "customers:write"
ORDERS_READ = "orders:read"
ORDERS_WRITE = "orders:write"
PAYMENTS_WRITE = "payments:write"
CUSTOMERS_EXPORT = "customers:export"
CUSTOMERS_ERASE = "customers:erase"
AUDIT_READ = "audit:read"
REPORTS_READ = "reports:read"
ROLE_CUSTOMER = "role:customer"
ROLE_ADMIN = "role:admin"


def allowed(principal: Principal, any_of: Iterable[str], *, owner: int | None = None) -> bool:
    """True when the principal holds one of `any_of`; `owner` is the customer owning the object at hand."""
    for grant in any_of:
        if grant == OWNER:
            if principal.owns_customer(owner):
                return True
        elif principal.has(grant):
            return True
    return principal.is_admin


def require(principal: Principal, any_of: Iterable[str], what: str, *, owner: int | None = None) -> None:
    grants = tuple(any_of)
    if not allowed(principal, grants, owner=owner):
        raise ForbiddenError(f"Not allowed to {what}: requires {' or '.join(grants)}")


def can_read_customer(principal: Principal, customer_id: int) -> bool:
    return principal.has(CUSTOMERS_READ) or principal.owns_customer(customer_id)


def can_read_order(principal: Principal, customer_id: int) -> bool:
    """`customer_id`: the customer who placed the order."""
    return principal.has(ORDERS_READ) or principal.owns_customer(customer_id)


def own_customer_only(principal: Principal, staff_grant: str) -> int | None:
    """For lists: None when the principal sees every row (staff), else the one customer whose rows it sees."""
    if principal.has(staff_grant) or principal.customer_id is None:
        return None
    return principal.customer_id


def act_for_customer(principal: Principal, customer_id: int, staff_grant: str, what: str) -> None:
    """A customer acts only for itself; staff with `staff_grant` for anyone."""
    if principal.has(staff_grant) or principal.owns_customer(customer_id):
        return
    raise ForbiddenError(f"Not allowed to {what} for another customer: requires {staff_grant}")
