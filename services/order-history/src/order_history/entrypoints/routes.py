"""HTTP routes: parse the request, call the service layer, shape the answer.

The API is read-only: the history changes only by the events order-history listens to.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from chassis.auth import AccessToken, require_scopes
from chassis.etags import conditional_json
from chassis.problems import ProblemError, problem_responses
from chassis.unit_of_work import request_unit_of_work
from order_history.entrypoints.schemas import PastOrderPage
from order_history.service_layer import queries
from order_history.service_layer.ports import UnitOfWork

router = APIRouter(tags=["order history"])


Uow = Annotated[UnitOfWork, Depends(request_unit_of_work)]


@router.get(
    "/customers/{customer_id}/orders",
    response_model=PastOrderPage,
    responses={
        304: {"description": "Not modified (If-None-Match)"},
        **problem_responses(401, 403, 404, 422),
    },
    summary="List a customer's orders, latest placed first, with items, payment and stock",
    description="Only the customer themself may read their history: for anyone else it does "
    "not exist (404), so a history's existence is not given away. Assembled from events, it "
    "may lag a moment behind the orders service.",
)
async def list_orders(
    *,
    request: Request,
    customer_id: str,
    token: Annotated[AccessToken, require_scopes("orders:read")],
    uow: Uow,
    page: Annotated[int, Query(ge=1, le=queries.MAX_PAGE, description="From 1.")] = 1,
    page_size: Annotated[
        int, Query(ge=1, le=queries.MAX_PAGE_SIZE, description="Orders per page.")
    ] = queries.DEFAULT_PAGE_SIZE,
) -> Response:
    if customer_id != token.subject:
        raise ProblemError(
            404,
            "customer-not-found",
            "Customer not found",
            f"there is no order history of customer {customer_id!r} for this caller",
        )
    result = await queries.orders_of(uow, customer_id, page=page, page_size=page_size)
    return conditional_json(request, PastOrderPage.from_page(result).model_dump(mode="json"))
