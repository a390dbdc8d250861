"""Payment providers reached over HTTP, implementing the service layer's PaymentProvider port."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp

from billing.service_layer.ports import (
    AuthorizationUnknown,
    ProviderApproval,
    ProviderDecline,
    ProviderOutcomeUnknown,
    ProviderRefused,
    ProviderUnreachable,
)
from chassis.requests import outbound_headers

if TYPE_CHECKING:
    from contracts import Money


class HttpPaymentProvider:
    """One provider's HTTP API, called through the process's one shared client session.

    Every call has a time limit. What went wrong decides what billing may do next: a refused
    connection, a 503 or a refusal means the provider did nothing (ProviderUnreachable:
    another may be asked); a timeout after sending, a dropped connection or another 5xx
    means it may have acted (ProviderOutcomeUnknown: ask it again, never another).
    """

    def __init__(
        self, name: str, base_url: str, session: aiohttp.ClientSession, *, timeout: float
    ) -> None:
        self._name = name
        self._base_url = base_url.rstrip("/")
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

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
            return ProviderApproval(reference=body["id"])
        if status == 402:
            return ProviderDecline(reason=str(body.get("decline_reason") or "card_declined"))
        raise ProviderUnreachable(f"{self._name} answered an authorization with {status}")

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
        headers = {**outbound_headers(), "Idempotency-Key": idempotency_key}
        try:
            async with self._session.post(
                self._base_url + path, json=payload, headers=headers, timeout=self._timeout
            ) as response:
                if response.status == 503:
                    # Unavailable: refused before doing anything, so another may be asked.
                    return response.status, {}
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
