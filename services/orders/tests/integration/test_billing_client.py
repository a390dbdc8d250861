"""The billing client over HTTP, against a stand-in for billing on loopback.

The stand-in answers what each test queues and records what it was sent, so the tests can
check what orders sends (keys, headers, body) and how it reads every kind of answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import JSONResponse, Response

from chassis.auth import TokenUnavailableError
from chassis.requests import request_id_var
from chassis.upstream import HttpUpstream
from contracts import Money
from orders.adapters.billing_client import BillingClient
from orders.domain.errors import CheckoutRefused, PaymentDeclined
from orders.service_layer.ports import NoUsableAnswer
from services.orders.tests.integration.conftest import free_port

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class StandIn:
    """A billing that records each request and gives the next queued answer."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, Any]] = []
        self.app = FastAPI()
        router = APIRouter()
        router.add_api_route("/{path:path}", self._answer, methods=["GET", "POST"])
        self.app.include_router(router)

    def will_answer(self, status: int, body: dict[str, Any]) -> None:
        self.answers.append((status, body))

    def will_answer_list(self, status: int, body: list[dict[str, Any]]) -> None:
        self.answers.append((status, body))

    def will_answer_problem(self, status: int, slug: str, detail: str) -> None:
        self.will_answer(
            status,
            {"type": f"https://souk.dev/problems/{slug}", "title": slug, "detail": detail},
        )

    async def _answer(self, request: Request, path: str) -> Response:
        body = await request.body()
        self.requests.append(
            {
                "path": f"/{path}",
                "query": request.url.query,
                "headers": dict(request.headers),
                "json": await request.json() if body else None,
            }
        )
        status, answer = self.answers.pop(0)
        if isinstance(answer, dict) and answer.get("sleep"):
            await asyncio.sleep(answer["sleep"])
        return JSONResponse(answer, status_code=status)


def payment(status: str, decline_reason: str | None = None) -> dict[str, Any]:
    return {"id": "pay-1", "order_id": "o-1", "status": status, "decline_reason": decline_reason}


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def stand_in() -> StandIn:
    return StandIn()


@pytest.fixture
async def billing_url(stand_in: StandIn) -> AsyncIterator[str]:
    async with serving(stand_in.app) as url:
        yield url


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class FakeTokens:
    """Orders' own access token, as identity would give it; or identity's refusal."""

    def __init__(self) -> None:
        self.refusal: TokenUnavailableError | None = None

    async def token(self) -> str:
        if self.refusal is not None:
            raise self.refusal
        return "orders-own-token"


@pytest.fixture
def tokens() -> FakeTokens:
    return FakeTokens()


@pytest.fixture
def billing(billing_url: str, session: aiohttp.ClientSession, tokens: FakeTokens) -> BillingClient:
    return BillingClient(
        HttpUpstream(
            "billing", [billing_url], session, timeout=0.3, connect_timeout=0.5, tokens=tokens
        )
    )


async def test_every_call_to_billing_carries_orders_own_token(
    billing: BillingClient, stand_in: StandIn
) -> None:
    stand_in.will_answer(201, payment("AUTHORIZED"))
    stand_in.will_answer(200, payment("CAPTURED"))

    await billing.authorize("o-1", Money(3830, "EUR"), "tok_ok", customer_id="c-1")
    await billing.capture("pay-1")

    assert [sent["headers"]["authorization"] for sent in stand_in.requests] == [
        "Bearer orders-own-token",
        "Bearer orders-own-token",
    ]


@pytest.mark.parametrize("transient", [True, False])
async def test_no_token_from_identity_fails_the_call_before_billing_is_asked(
    billing: BillingClient, stand_in: StandIn, tokens: FakeTokens, transient: bool
) -> None:
    tokens.refusal = TokenUnavailableError("identity refused client 'orders'", transient=transient)

    with pytest.raises(NoUsableAnswer, match="identity refused client 'orders'") as failed:
        await billing.void("pay-1")

    assert failed.value.transient is transient
    assert stand_in.requests == []


async def test_authorizing_sends_order_customer_amount_and_card_under_a_key_of_the_order_id(
    billing: BillingClient, stand_in: StandIn
) -> None:
    stand_in.will_answer(201, payment("AUTHORIZED"))
    request_id_var.set("req-42")

    payment_id = await billing.authorize("o-1", Money(3830, "EUR"), "tok_ok", customer_id="c-1")

    sent = stand_in.requests[0]
    assert payment_id == "pay-1"
    assert sent["path"] == "/payments"
    assert sent["json"] == {
        "order_id": "o-1",
        "customer_id": "c-1",
        "amount": {"amount": 3830, "currency": "EUR"},
        "card_token": "tok_ok",
    }
    assert sent["headers"]["idempotency-key"] == "o-1-authorize"
    assert sent["headers"]["x-request-id"] == "req-42"


async def test_a_replayed_authorization_answers_the_same_payment(
    billing: BillingClient, stand_in: StandIn
) -> None:
    stand_in.will_answer(200, payment("AUTHORIZED"))

    payment_id = await billing.authorize("o-1", Money(3830, "EUR"), "tok_ok", customer_id="c-1")

    assert payment_id == "pay-1"


async def test_a_declined_card_is_declined_with_billings_reason(
    billing: BillingClient, stand_in: StandIn
) -> None:
    stand_in.will_answer(201, payment("DECLINED", "insufficient funds"))

    with pytest.raises(PaymentDeclined, match=r"^payment declined: insufficient funds$"):
        await billing.authorize("o-1", Money(3830, "EUR"), "tok_ok", customer_id="c-1")


async def test_a_payment_billing_finds_invalid_is_refused_with_its_detail(
    billing: BillingClient, stand_in: StandIn
) -> None:
    stand_in.will_answer_problem(422, "invalid-payment", "amount: must be positive")

    with pytest.raises(CheckoutRefused, match=r"^payment refused: amount: must be positive$"):
        await billing.authorize("o-1", Money(0, "EUR"), "tok_ok", customer_id="c-1")


@pytest.mark.parametrize(
    ("status", "slug"),
    [(409, "idempotency-key-in-flight"), (503, "payment-provider-unavailable"), (502, "x")],
)
async def test_billing_busy_or_unavailable_is_a_transient_failure(
    billing: BillingClient, stand_in: StandIn, status: int, slug: str
) -> None:
    stand_in.will_answer_problem(status, slug, "try again")

    with pytest.raises(NoUsableAnswer) as caught:
        await billing.authorize("o-1", Money(3830, "EUR"), "tok_ok", customer_id="c-1")

    assert caught.value.transient


async def test_capturing_posts_to_the_payment_and_a_refusal_rejects(
    billing: BillingClient, stand_in: StandIn
) -> None:
    stand_in.will_answer(200, payment("CAPTURED"))
    stand_in.will_answer_problem(409, "payment-state-conflict", "cannot capture: it is VOIDED")

    await billing.capture("pay-1")
    with pytest.raises(CheckoutRefused, match=r"^payment not captured: cannot capture"):
        await billing.capture("pay-1")

    assert [r["path"] for r in stand_in.requests] == ["/payments/pay-1/capture"] * 2


async def test_a_void_or_refund_of_a_payment_in_another_state_leaves_it_as_it_is(
    billing: BillingClient, stand_in: StandIn
) -> None:
    stand_in.will_answer_problem(409, "payment-state-conflict", "cannot void: it is CAPTURED")
    stand_in.will_answer_problem(409, "payment-state-conflict", "cannot refund: it is VOIDED")

    await billing.void("pay-1")
    await billing.refund("pay-1")

    assert [r["path"] for r in stand_in.requests] == [
        "/payments/pay-1/void",
        "/payments/pay-1/refund",
    ]


async def test_a_void_billing_fails_is_a_failure_left_for_later(
    billing: BillingClient, stand_in: StandIn
) -> None:
    stand_in.will_answer_problem(404, "payment-not-found", "no payment pay-1")

    with pytest.raises(NoUsableAnswer) as caught:
        await billing.void("pay-1")

    assert not caught.value.transient


async def test_the_payment_held_for_an_order_is_found_by_the_order_id(
    billing: BillingClient, stand_in: StandIn
) -> None:
    declined = {**payment("DECLINED", "insufficient funds"), "id": "pay-0"}
    stand_in.will_answer_list(200, [declined, payment("AUTHORIZED")])
    stand_in.will_answer_list(200, [declined])

    held = await billing.held_payment("order-1")
    nothing = await billing.held_payment("order-1")

    assert (held, nothing) == ("pay-1", None)
    assert stand_in.requests[0]["path"] == "/payments"
    assert stand_in.requests[0]["query"] == "order_id=order-1"


async def test_a_slow_billing_is_a_transient_failure_after_the_timeout(
    billing: BillingClient, stand_in: StandIn
) -> None:
    stand_in.will_answer(200, {"sleep": 1})

    with pytest.raises(NoUsableAnswer) as caught:
        await billing.capture("pay-1")

    assert caught.value.transient


async def test_a_replica_that_refuses_connections_is_transient_and_the_next_call_goes_on(
    billing_url: str, stand_in: StandIn, session: aiohttp.ClientSession
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    billing = BillingClient(
        HttpUpstream("billing", [dead, billing_url], session, timeout=1, connect_timeout=1)
    )
    stand_in.will_answer(200, payment("CAPTURED"))

    with pytest.raises(NoUsableAnswer) as caught:
        await billing.capture("pay-1")
    await billing.capture("pay-1")

    assert caught.value.transient
    assert len(stand_in.requests) == 1
