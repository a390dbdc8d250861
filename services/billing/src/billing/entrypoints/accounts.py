"""HTTP routes of the ledger: customers' store-credit accounts, credited and debited.

Services and admins call them with ``payments:write`` (credits and debits) and
``payments:read``; every credit and debit needs an Idempotency-Key, so a retry never moves
money twice.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from billing.domain.account import ACCOUNT_ID_MAX_LENGTH
from billing.entrypoints.routes import PAY, READ, IdempotencyKey, Uow
from billing.entrypoints.schemas import (
    AccountPublic,
    CreditRequest,
    DebitRequest,
    EntryPublic,
)
from billing.service_layer import accounts, queries
from billing.service_layer.accounts import EntryOutcome
from chassis.etags import conditional_json
from chassis.problems import problem_responses
from chassis.requests import public_path

router = APIRouter(prefix="/accounts", tags=["accounts"])

AccountId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=ACCOUNT_ID_MAX_LENGTH,
        # Printable ASCII without spaces: an id goes into a Location header, which cannot
        # carry other characters (they failed after the entry was saved).
        pattern=r"^[A-Za-z0-9._~:@+-]+$",
        description="The account's id: the customer's (letters, digits and . _ ~ : @ + -).",
        examples=["customer-7"],
    ),
]


@router.get(
    "/{account_id}",
    dependencies=[READ],
    response_model=AccountPublic,
    responses={
        304: {"description": "Not modified (If-None-Match)"},
        **problem_responses(401, 403, 404),
    },
    summary="Get an account's balance, with an ETag",
)
async def get_account(request: Request, account_id: AccountId, uow: Uow) -> Response:
    account = await queries.get_account(uow, account_id)
    return conditional_json(request, AccountPublic.from_domain(account).model_dump(mode="json"))


@router.get(
    "/{account_id}/entries",
    dependencies=[READ],
    response_model=list[EntryPublic],
    responses=problem_responses(401, 403, 404),
    summary="List an account's entries, oldest first: its whole ledger",
)
async def list_entries(request: Request, account_id: AccountId, uow: Uow) -> Response:
    entries = await queries.entries_of_account(uow, account_id)
    return conditional_json(
        request, [EntryPublic.from_domain(entry).model_dump(mode="json") for entry in entries]
    )


@router.post(
    "/{account_id}/credits",
    dependencies=[PAY],
    status_code=201,
    response_model=EntryPublic,
    responses={
        200: {"model": EntryPublic, "description": "A replay: the entry this key made"},
        **problem_responses(400, 401, 403, 409, 422),
    },
    summary="Put money on an account: a top-up or a refund (Idempotency-Key header required)",
    description=(
        "The first credit opens the account in its currency. Repeating a request with its "
        "Idempotency-Key returns the same entry (200) and credits nothing more."
    ),
)
async def credit_account(
    request: Request,
    account_id: AccountId,
    body: CreditRequest,
    uow: Uow,
    key: IdempotencyKey,
) -> Response:
    command = body.to_command(account_id, key)
    outcome = await accounts.credit_account(
        command, uow, attempts=request.app.state.ledger_attempts
    )
    return _entry_response(request, outcome)


@router.post(
    "/{account_id}/debits",
    dependencies=[PAY],
    status_code=201,
    response_model=EntryPublic,
    responses={
        200: {"model": EntryPublic, "description": "A replay: the entry this key made"},
        **problem_responses(400, 401, 403, 409, 422),
    },
    summary="Draw money from an account to pay (Idempotency-Key header required)",
    description=(
        "Refused with 409 insufficient-funds if the account holds less than the amount: the "
        "balance never goes below zero, also when debits arrive at the same time."
    ),
)
async def debit_account(
    request: Request,
    account_id: AccountId,
    body: DebitRequest,
    uow: Uow,
    key: IdempotencyKey,
) -> Response:
    command = body.to_command(account_id, key)
    outcome = await accounts.debit_account(command, uow, attempts=request.app.state.ledger_attempts)
    return _entry_response(request, outcome)


def _entry_response(request: Request, outcome: EntryOutcome) -> Response:
    # A public path, never this instance's own address.
    location = public_path(request.headers, f"/accounts/{outcome.entry.account_id}")
    return conditional_json(
        request,
        EntryPublic.from_domain(outcome.entry).model_dump(mode="json"),
        status_code=200 if outcome.replayed else 201,
        headers={"Location": location},
    )
