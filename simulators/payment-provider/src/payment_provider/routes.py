"""The provider's HTTP API: authorizations (affected by the simulation) and the simulation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request

from chassis import ProblemError
from chassis.problems import problem_responses
from payment_provider.processor import CardProcessor, Operation
from payment_provider.schemas import AuthorizationPublic, AuthorizationRequest
from payment_provider.settings import ProviderSettings
from payment_provider.simulation import Simulation, simulated_conditions

payments = APIRouter(
    prefix="/v1/authorizations",
    tags=["payments"],
    dependencies=[Depends(simulated_conditions)],
    responses=problem_responses(503),
)
simulation = APIRouter(prefix="/v1/simulation", tags=["simulation"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=255,
        description="Repeating a request with the same key replays its first outcome.",
    ),
]


def processor(request: Request) -> CardProcessor:
    card_processor: CardProcessor = request.app.state.processor
    return card_processor


Processor = Annotated[CardProcessor, Depends(processor)]


@payments.post(
    "",
    status_code=201,
    response_model=AuthorizationPublic,
    responses=problem_responses(400, 402, 422),
    summary="Authorize an amount on a card (Idempotency-Key required)",
)
async def authorize(
    body: AuthorizationRequest, card_processor: Processor, idempotency_key: IdempotencyKey = None
) -> AuthorizationPublic:
    if not idempotency_key:
        raise ProblemError(
            400,
            "idempotency-key-required",
            "Idempotency-Key required",
            "Send an Idempotency-Key header so a retried authorization cannot charge twice.",
        )
    authorization = card_processor.authorize(
        amount=body.amount.amount,
        currency=body.amount.currency,
        card_token=body.card_token,
        reference=body.reference,
        idempotency_key=idempotency_key,
    )
    return AuthorizationPublic.of(authorization)


@payments.get(
    "",
    response_model=list[AuthorizationPublic],
    summary="Find the authorizations made for a merchant reference (reconciliation)",
    description="Without `reference`, every authorization the provider holds in its books "
    "(an operator's audit, e.g. `souk chaos` counting captures).",
)
async def find_authorizations(
    card_processor: Processor, reference: str | None = None
) -> list[AuthorizationPublic]:
    found = card_processor.all() if reference is None else card_processor.find(reference)
    return [AuthorizationPublic.of(a) for a in found]


@payments.get(
    "/{authorization_id}",
    response_model=AuthorizationPublic,
    responses=problem_responses(404),
    summary="Get an authorization",
)
async def get_authorization(
    authorization_id: str, card_processor: Processor
) -> AuthorizationPublic:
    return AuthorizationPublic.of(card_processor.get(authorization_id))


@payments.post(
    "/{authorization_id}/capture",
    response_model=AuthorizationPublic,
    responses=problem_responses(404, 409, 422),
    summary="Capture an authorization in full",
)
async def capture(
    authorization_id: str, card_processor: Processor, idempotency_key: IdempotencyKey = None
) -> AuthorizationPublic:
    return AuthorizationPublic.of(
        card_processor.perform(Operation.CAPTURE, authorization_id, idempotency_key=idempotency_key)
    )


@payments.post(
    "/{authorization_id}/void",
    response_model=AuthorizationPublic,
    responses=problem_responses(404, 409, 422),
    summary="Release an authorization that was not captured",
)
async def void(
    authorization_id: str, card_processor: Processor, idempotency_key: IdempotencyKey = None
) -> AuthorizationPublic:
    return AuthorizationPublic.of(
        card_processor.perform(Operation.VOID, authorization_id, idempotency_key=idempotency_key)
    )


@payments.post(
    "/{authorization_id}/refund",
    response_model=AuthorizationPublic,
    responses=problem_responses(404, 409, 422),
    summary="Refund a captured authorization in full",
)
async def refund(
    authorization_id: str, card_processor: Processor, idempotency_key: IdempotencyKey = None
) -> AuthorizationPublic:
    return AuthorizationPublic.of(
        card_processor.perform(Operation.REFUND, authorization_id, idempotency_key=idempotency_key)
    )


@simulation.get("", response_model=Simulation, summary="How the provider behaves now")
async def get_simulation(request: Request) -> Simulation:
    current: Simulation = request.app.state.simulation
    return current


@simulation.put(
    "",
    response_model=Simulation,
    responses=problem_responses(422),
    summary="Set latency, error rate and outage; fields left out take their configured defaults",
)
async def put_simulation(request: Request, body: Simulation) -> Simulation:
    settings: ProviderSettings = request.app.state.settings
    current = Simulation.from_settings(settings).model_copy(
        update=body.model_dump(include=body.model_fields_set)
    )
    request.app.state.simulation = current
    return current
