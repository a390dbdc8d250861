"""HTTP routes: parse the request, call the service layer, shape the answer.

Nobody asks notifications to send anything: they come from the events it listens to.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from chassis.auth import AccessToken
from chassis.customers import require_customer
from chassis.etags import conditional_json
from chassis.problems import problem_responses
from chassis.unit_of_work import request_unit_of_work
from notifications.entrypoints.schemas import NotificationPage
from notifications.service_layer import queries
from notifications.service_layer.ports import UnitOfWork

router = APIRouter(tags=["notifications"])


Uow = Annotated[UnitOfWork, Depends(request_unit_of_work)]


@router.get(
    "/notifications",
    response_model=NotificationPage,
    responses=problem_responses(401, 403, 422),
    summary="List what the caller has been told about their orders, newest first",
)
async def list_notifications(
    *,
    request: Request,
    # A customer reads only what they were told: the customer is the token's subject.
    token: Annotated[AccessToken, require_customer("orders:read")],
    uow: Uow,
    page: Annotated[int, Query(ge=1, le=queries.MAX_PAGE, description="From 1.")] = 1,
    page_size: Annotated[
        int, Query(ge=1, le=queries.MAX_PAGE_SIZE, description="Notifications per page.")
    ] = queries.DEFAULT_PAGE_SIZE,
) -> Response:
    result = await queries.list_notifications(uow, token.subject, page=page, page_size=page_size)
    return conditional_json(request, NotificationPage.from_page(result).model_dump(mode="json"))
