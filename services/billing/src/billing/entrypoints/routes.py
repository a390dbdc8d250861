"""HTTP routes: parse the request, call the service layer, shape the answer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from billing.domain.commands import CapturePayment, RefundPayment, VoidPayment
from billing.domain.model import ORDER_ID_MAX_LENGTH, Payment
from billing.entrypoints.schemas import PaymentPublic, PaymentRequest
from billing.service_layer import handlers, queries
from billing.service_layer.ports import (
    PaymentProvider,
    UnitOfWork,
)
from chassis.auth import require_scopes
from chassis.etags import conditional_json
from chassis.idempotency import idempotency_key
from chassis.openapi import links
from chassis.problems import problem_responses
from chassis.requests import public_path
from chassis.unit_of_work import request_unit_of_work

router = APIRouter(tags=["payments"])

# Only services call billing (orders, with its own client token); never a customer directly.
PAY = require_scopes("payments:write")
READ = require_scopes("payments:read")
_PAYMENT_ID = {"payment_id": "$response.body#/id"}
# What follows an authorization (OpenAPI links): read it, capture, void or refund it.
_PAYMENT_LINKS = {
    "GetPayment": ("get_payment_payments__payment_id__get", _PAYMENT_ID),
    "CapturePayment": ("capture_payment_payments__payment_id__capture_post", _PAYMENT_ID),
    "VoidPayment": ("void_payment_payments__payment_id__void_post", _PAYMENT_ID),
    "RefundPayment": ("refund_payment_payments__payment_id__refund_post", _PAYMENT_ID),
}


def payment_providers(request: Request) -> Sequence[PaymentProvider]:
    """The providers the composition root put on ``app.state``, in order of preference."""
    providers: Sequence[PaymentProvider] = request.app.state.providers
    return providers


Uow = Annotated[UnitOfWork, Depends(request_unit_of_work)]
Providers = Annotated[Sequence[PaymentProvider], Depends(payment_providers)]
IdempotencyKey = Annotated[
    str,
    idempotency_key(
        "move money", description="Required. A key of the caller's choosing, new for each request."
    ),
]


@router.post(
    "/payments",
    dependencies=[PAY],
    status_code=201,
    response_model=PaymentPublic,
    responses={
        200: {"model": PaymentPublic, "description": "A replay: the payment this key made"},
        **problem_responses(400, 401, 403, 409, 422, 503),
        **links(201, **_PAYMENT_LINKS),
    },
    summary="Authorize a payment for an order (Idempotency-Key header required)",
    description=(
        "Authorizes the amount with the primary provider, or with the backup if the primary "
        "cannot be reached. A declined card is an outcome (201, status DECLINED), not an "
        "error. Repeating a request with its Idempotency-Key returns the same payment (200) "
        "without asking a provider again."
    ),
)
async def authorize_payment(
    request: Request,
    body: PaymentRequest,
    uow: Uow,
    providers: Providers,
    key: IdempotencyKey,
) -> Response:
    lease: timedelta = request.app.state.idempotency_lease
    outcome = await handlers.authorize_payment(body.to_command(key), uow, providers, lease=lease)
    # A public path, never this instance's own address.
    location = public_path(request.headers, f"/payments/{outcome.payment.id}")
    return conditional_json(
        request,
        _public(outcome.payment),
        status_code=200 if outcome.replayed else 201,
        headers={"Location": location},
    )


@router.get(
    "/payments/{payment_id}",
    dependencies=[READ],
    response_model=PaymentPublic,
    responses={
        304: {"description": "Not modified (If-None-Match)"},
        **problem_responses(401, 403, 404),
    },
    summary="Get one payment, with an ETag",
)
async def get_payment(request: Request, payment_id: str, uow: Uow) -> Response:
    return conditional_json(request, _public(await queries.get_payment(uow, payment_id)))


@router.get(
    "/payments",
    dependencies=[READ],
    response_model=list[PaymentPublic],
    responses=problem_responses(401, 403, 422),
    summary="List the payments of an order, oldest first",
)
async def list_payments(
    request: Request,
    uow: Uow,
    order_id: Annotated[
        str, Query(min_length=1, max_length=ORDER_ID_MAX_LENGTH, description="The order's id.")
    ],
) -> Response:
    payments = await queries.payments_of_order(uow, order_id)
    return conditional_json(request, [_public(payment) for payment in payments])


@router.post(
    "/payments/{payment_id}/capture",
    dependencies=[PAY],
    response_model=PaymentPublic,
    responses=problem_responses(401, 403, 404, 409, 503),
    summary="Capture an authorized payment (repeating it changes nothing)",
)
async def capture_payment(
    request: Request, payment_id: str, uow: Uow, providers: Providers
) -> Response:
    payment = await handlers.capture_payment(CapturePayment(payment_id), uow, providers)
    return conditional_json(request, _public(payment))


@router.post(
    "/payments/{payment_id}/void",
    dependencies=[PAY],
    response_model=PaymentPublic,
    responses=problem_responses(401, 403, 404, 409, 503),
    summary="Void an authorized payment that will not be captured (repeating it changes nothing)",
)
async def void_payment(
    request: Request, payment_id: str, uow: Uow, providers: Providers
) -> Response:
    payment = await handlers.void_payment(VoidPayment(payment_id), uow, providers)
    return conditional_json(request, _public(payment))


@router.post(
    "/payments/{payment_id}/refund",
    dependencies=[PAY],
    response_model=PaymentPublic,
    responses=problem_responses(401, 403, 404, 409, 503),
    summary="Refund a captured payment in full (repeating it changes nothing)",
)
async def refund_payment(
    request: Request, payment_id: str, uow: Uow, providers: Providers
) -> Response:
    payment = await handlers.refund_payment(RefundPayment(payment_id), uow, providers)
    return conditional_json(request, _public(payment))


def _public(payment: Payment) -> dict[str, object]:
    return PaymentPublic.from_domain(payment).model_dump(mode="json")
