"""Billing's payments over its REST API, implementing the Billing port.

Authorizing carries an Idempotency-Key derived from the order id, so it can be sent again
after a lost answer and billing authorizes once; capture, void and refund are idempotent
by the payment's state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from chassis.upstream import UpstreamFailure
from orders.adapters.upstream_errors import port_errors
from orders.domain.errors import CheckoutRefused, PaymentDeclined

if TYPE_CHECKING:
    from collections.abc import Mapping

    from chassis.upstream import Answer, HttpUpstream
    from contracts import Money

# Billing is still handling an earlier request with the same key: ask again shortly.
_IN_FLIGHT = "idempotency-key-in-flight"
# The payment is not in the state an action starts from (voiding a captured one, say).
_STATE_CONFLICT = "payment-state-conflict"
# Statuses of a payment that holds or took money, hence one a compensation may undo.
_UNDOABLE = frozenset({"AUTHORIZED", "CAPTURED"})
# Billing's 503s that blame a payment provider, not billing: billing answered at once, so
# they do not open orders' breaker on billing (which would refuse the new payments billing
# sends to the backup provider while the primary is down). Still retried later by the saga.
BILLING_DEPENDENCY_PROBLEMS = frozenset({"payment-outcome-unknown", "payment-provider-unavailable"})


class BillingClient:
    def __init__(self, upstream: HttpUpstream) -> None:
        self._upstream = upstream

    @port_errors
    async def authorize(
        self, order_id: str, amount: Money, card_token: str, *, customer_id: str
    ) -> str:
        path = "/payments"
        answer = await self._post(
            path,
            body={
                "order_id": order_id,
                "customer_id": customer_id,
                "amount": amount.to_dict(),
                "card_token": card_token,
            },
            headers={"Idempotency-Key": f"{order_id}-authorize"},
        )
        if answer.status in {400, 422}:
            raise CheckoutRefused(f"payment refused: {answer.problem_detail()}")
        if answer.status not in {200, 201}:
            raise self._upstream.unexpected("POST", path, answer)
        try:
            status, payment_id = answer.body["status"], str(answer.body["id"])
        except (KeyError, TypeError) as error:
            raise self._upstream.unexpected("POST", path, answer) from error
        if status == "DECLINED":
            raise PaymentDeclined(answer.body.get("decline_reason") or "no reason given")
        return payment_id

    @port_errors
    async def held_payment(self, order_id: str) -> str | None:
        path = f"/payments?order_id={quote(order_id, safe='')}"
        answer = await self._upstream.call("GET", path)
        self._require_success(path, answer)
        try:
            held = [str(p["id"]) for p in answer.body if p["status"] in _UNDOABLE]
        except (KeyError, TypeError) as error:
            raise self._upstream.unexpected("GET", path, answer) from error
        return held[-1] if held else None

    @port_errors
    async def capture(self, payment_id: str) -> None:
        path = _action(payment_id, "capture")
        answer = await self._post(path)
        if 400 <= answer.status < 500:
            raise CheckoutRefused(f"payment not captured: {answer.problem_detail()}")
        self._require_success(path, answer)

    @port_errors
    async def void(self, payment_id: str) -> None:
        await self._undo(payment_id, "void")

    @port_errors
    async def refund(self, payment_id: str) -> None:
        await self._undo(payment_id, "refund")

    async def _undo(self, payment_id: str, action: str) -> None:
        """Void or refund; a payment in a state the action does not start from is left as
        it is (a capture in doubt is undone by refunding and voiding, one of which applies)."""
        path = _action(payment_id, action)
        answer = await self._post(path)
        if answer.status == 409 and answer.problem_type() == _STATE_CONFLICT:
            return
        self._require_success(path, answer)

    async def _post(
        self,
        path: str,
        *,
        body: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        answer = await self._upstream.call("POST", path, body=body, headers=headers)
        if answer.status == 409 and answer.problem_type() == _IN_FLIGHT:
            raise UpstreamFailure(
                "billing", f"POST {path}: {answer.problem_detail()}", transient=True
            )
        return answer

    def _require_success(self, path: str, answer: Answer) -> None:
        if not 200 <= answer.status < 300:
            raise self._upstream.unexpected("POST", path, answer)


def _action(payment_id: str, action: str) -> str:
    return f"/payments/{quote(payment_id, safe='')}/{action}"
