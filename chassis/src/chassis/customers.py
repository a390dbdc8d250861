"""Routes that act for a signed-in customer: a client's own token is no customer.

The gateway refuses such tokens on its customer routes already; a service checks again
(zero trust), so a client-credentials token sent to it directly places no order either:

    Reader = Annotated[AccessToken, require_customer("orders:read")]
"""

# No ``from __future__ import annotations``: FastAPI reads the dependency's annotation at run
# time, and it names a local of require_customer.
from typing import Annotated

from fastapi import params

from chassis.auth import AccessToken, customer_required_problem, is_customer, require_scopes


def require_customer(*scopes: str) -> params.Depends:
    """Like ``require_scopes``, and a 403 ``customer-required`` unless a customer signed in
    for the token (it names their grant)."""
    scoped = require_scopes(*scopes)

    async def customer_access_token(token: Annotated[AccessToken, scoped]) -> AccessToken:
        if not is_customer(token):
            raise customer_required_problem()
        return token

    return params.Depends(customer_access_token)
