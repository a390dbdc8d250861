"""Payment providers reached over HTTP, implementing the service layer's PaymentProvider port."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import quote

import aiohttp

from billing.service_layer.ports import (
    AuthorizationUnknown,
    ProviderApproval,
    ProviderAuthorization,
    ProviderDecline,
    ProviderOutcomeUnknown,
    ProviderRefused,
    ProviderUnreachable,
)
from chassis.requests import outbound_headers
from chassis.resilience import BulkheadFull, CircuitOpen, DeadlineExceeded, DependencyPolicy

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from chassis.resilience import Pipeline, Resilience
    from contracts import Money

_HOLDING: Final = "authorized"
T = TypeVar("T")


def provider_policy(timeout: float) -> DependencyPolicy:
    """Billing's defaults for a provider: a breaker that opens after a few unanswered calls
    (so new payments fail over at once), a bulkhead, and no retries of its own (the handler
    decides what may be asked again, and of whom)."""
    return DependencyPolicy(
        timeout=timeout + 0.5,
        attempts=1,
        failure_threshold=3,
        reset_timeout=5.0,
        max_concurrent=32,
        max_waiting=32,
        max_wait=0.2,
    )


class HttpPaymentProvider:
    """One provider's HTTP API, called through the process's one shared client session.

    Every call has a time limit. What went wrong decides what billing may do next: a refused
    connection, a 503 or a refusal means the provider did nothing (ProviderUnreachable:
    another may be asked); a timeout after sending, a dropped connection or another 5xx
    means it may have acted (ProviderOutcomeUnknown: ask it again, never another).

    Every call goes through the provider's own breaker and bulkhead (``resilience``): while
    the breaker is open, or the bulkhead full, a call raises ProviderUnreachable at once
    without being sent, so a new authorization goes to the next provider straight away.
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        session: aiohttp.ClientSession,
        *,
        timeout: float,
        resilience: Resilience | None = None,
    ) -> None:
        self._name = name
        self._base_url = base_url.rstrip("/")
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._pipeline: Pipeline | None = (
            None if resilience is None else resilience.pipeline(name, provider_policy(timeout))
        )

    @property
    def name(self) -> str:
        return self._name

    async def authorize(
        self, *, amount: Money, card_token: str, reference: str, idempotency_key: str
    ) -> ProviderApproval | ProviderDecline:
        status, body = await self._post(
            "/v1/authorizations",
            idempotency_key,
            {"amount": amount.to_dict(), "card_token": card_token, "reference": reference},
        )
        if status == 201 and isinstance(body.get("id"), str):
            if body.get("status", _HOLDING) != _HOLDING:
                # A replay of an authorization released since (by reconciliation): it holds
                # nothing, so this payment cannot go ahead.
                return ProviderDecline(reason=f"authorization {body.get('status')}")
            return ProviderApproval(reference=body["id"])
        if status == 402:
            return ProviderDecline(reason=str(body.get("decline_reason") or "card_declined"))
        raise ProviderUnreachable(f"{self._name} answered an authorization with {status}")

    async def find(self, reference: str) -> list[ProviderAuthorization]:
        status, found = await self._through_pipeline(lambda: self._get_list(reference))
        if status != 200:
            raise ProviderUnreachable(f"{self._name} answered a lookup with {status}")
        return [
            ProviderAuthorization(reference=str(item["id"]), holds_money=item["status"] == _HOLDING)
            for item in found
            if isinstance(item, dict) and "id" in item
        ]

    async def _get_list(self, reference: str) -> tuple[int, list[Any]]:
        try:
            async with self._session.get(
                self._base_url + "/v1/authorizations",
                params={"reference": reference},
                headers=outbound_headers(),
                timeout=self._timeout,
            ) as response:
                if response.status != 200:
                    return response.status, []
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise ProviderUnreachable(f"{self._name} lookup failed: {error}") from error
        return response.status, body if isinstance(body, list) else []

    async def capture(self, authorization: str, *, idempotency_key: str) -> None:
        await self._settle("capture", authorization, idempotency_key)

    async def void(self, authorization: str, *, idempotency_key: str) -> None:
        await self._settle("void", authorization, idempotency_key)

    async def refund(self, authorization: str, *, idempotency_key: str) -> None:
        await self._settle("refund", authorization, idempotency_key)

    async def _settle(self, operation: str, authorization: str, idempotency_key: str) -> None:
        status, _ = await self._post(
            f"/v1/authorizations/{quote(authorization, safe='')}/{operation}", idempotency_key
        )
        if status == 200:
            return
        if status == 404:
            raise AuthorizationUnknown(f"{self._name} has no authorization {authorization!r}")
        if status == 409:
            raise ProviderRefused(f"{self._name} refused to {operation} {authorization!r}")
        raise ProviderUnreachable(f"{self._name} answered a {operation} with {status}")

    async def _post(
        self, path: str, idempotency_key: str, payload: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        return await self._through_pipeline(lambda: self._send(path, idempotency_key, payload))

    async def _through_pipeline(self, call: Callable[[], Awaitable[T]]) -> T:
        if self._pipeline is None:
            return await call()
        try:
            return await self._pipeline.call(call, is_failure=_unwell)
        except (CircuitOpen, BulkheadFull) as error:
            # Refused before sending: the provider cannot have acted on it.
            raise ProviderUnreachable(str(error)) from error
        except DeadlineExceeded as error:
            raise ProviderOutcomeUnknown(f"{self._name}: {error}") from error

    async def _send(
        self, path: str, idempotency_key: str, payload: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any]]:
        headers = {**outbound_headers(), "Idempotency-Key": idempotency_key}
        try:
            async with self._session.post(
                self._base_url + path, json=payload, headers=headers, timeout=self._timeout
            ) as response:
                if response.status == 503:
                    # Unavailable: refused before doing anything, so another may be asked.
                    raise ProviderUnreachable(f"{self._name} is unavailable (503)")
                if response.status >= 500:
                    raise ProviderOutcomeUnknown(f"{self._name} failed with {response.status}")
                body = await response.json(content_type=None)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            # No connection was made: the request cannot have reached the provider.
            raise ProviderUnreachable(f"{self._name} could not be reached: {error}") from error
        except TimeoutError as error:
            raise ProviderOutcomeUnknown(
                f"{self._name} did not answer within {self._timeout.total}s"
            ) from error
        except (aiohttp.ClientError, ValueError) as error:
            raise ProviderOutcomeUnknown(f"{self._name} dropped the request: {error}") from error
        return response.status, body if isinstance(body, dict) else {}


def _unwell(error: BaseException) -> bool:
    """A provider that cannot be reached or does not answer counts against its breaker."""
    return isinstance(error, ProviderUnreachable)
