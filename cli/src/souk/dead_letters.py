"""The dead letters of the running services, over their internal routes (`souk dlq`)."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from souk import instances
from souk.state import InstanceState, SoukState

ROUTE = "/internal/dead-letters"
REQUEST_TIMEOUT = 5.0
# A replay runs the handler once more under its own timeout (30 s unless the service says).
REPLAY_TIMEOUT = 60.0


class DeadLetter(BaseModel):
    """A message a service's handler gave up on, as its dead-letter routes describe it."""

    model_config = ConfigDict(frozen=True)

    service: str
    id: int
    group: str
    topic: str
    key: str
    message_id: str
    event_type: str
    schema_version: int
    attempts: int
    error: str
    buried_at: str
    replayed_at: str | None = None


class DeadLetterDetail(DeadLetter):
    """A dead letter with its headers and payload (text, or base64 when it is binary)."""

    headers: dict[str, str]
    payload: str | None = None
    payload_base64: str | None = None


Letter = TypeVar("Letter", bound=DeadLetter)


class DeadLetterError(Exception):
    """A service could not tell about, or act on, its dead letters."""


class UnknownServiceError(DeadLetterError):
    """The running system has no service of that name."""


class UnreachableError(DeadLetterError):
    """No instance of a service answered."""


class NoConsumersError(DeadLetterError):
    """The service consumes no messages, so it keeps no dead letters."""


class ProblemAnswerError(DeadLetterError):
    """The service answered with a problem (not found, already replayed, failed again...)."""

    def __init__(self, service: str, status: int, reason: str, detail: str) -> None:
        super().__init__(f"{service}: {reason}: {detail}" if detail else f"{service}: {reason}")
        self.service = service
        self.status = status
        self.reason = reason
        self.detail = detail


class ServiceDeadLetters:
    """The dead letters of one service, reached through whichever ready instance answers."""

    def __init__(self, service: str, urls: list[str], client: httpx.AsyncClient) -> None:
        self.service = service
        self._urls = urls
        self._client = client

    async def list(self, *, include_replayed: bool = False) -> list[DeadLetter]:
        """The unreplayed dead letters, oldest first (all of them with include_replayed)."""
        params = {"include_replayed": "true"} if include_replayed else {}
        response = await self._request("GET", ROUTE, params=params)
        if response.status_code == 404:
            raise self._no_consumers()
        body = self._json(response)
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise DeadLetterError(f"{self.service}: unexpected answer from {ROUTE}")
        return [self._parse(DeadLetter, item) for item in items]

    async def show(self, dead_letter_id: int) -> DeadLetterDetail:
        """One dead letter with its headers and payload."""
        response = await self._request("GET", f"{ROUTE}/{dead_letter_id}")
        await self._check_consumers(response)
        return self._parse(DeadLetterDetail, self._json(response))

    async def replay(self, dead_letter_id: int) -> DeadLetter:
        """Hand the dead letter to its handler again; ProblemAnswerError if that fails."""
        path = f"{ROUTE}/{dead_letter_id}/replay"
        response = await self._request("POST", path, seconds=REPLAY_TIMEOUT)
        await self._check_consumers(response)
        return self._parse(DeadLetter, self._json(response))

    async def _check_consumers(self, response: httpx.Response) -> None:
        # The problem handlers answer an unknown route and an unknown dead letter alike
        # (404 not-found): whether the list route exists tells the two apart.
        if response.status_code == 404 and (await self._request("GET", ROUTE)).status_code == 404:
            raise self._no_consumers()

    def _no_consumers(self) -> NoConsumersError:
        return NoConsumersError(f"{self.service} consumes no messages, so has no dead letters")

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        seconds: float = REQUEST_TIMEOUT,
    ) -> httpx.Response:
        if not self._urls:
            raise UnreachableError(f"{self.service}: no instance is ready")
        failures: list[str] = []
        for url in self._urls:
            try:
                return await self._client.request(
                    method, url + path, params=params, timeout=seconds
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failures.append(f"{url}: {str(exc) or type(exc).__name__}")
            except httpx.TransportError as exc:
                # The request may have reached the service (a replay may have run): no retry.
                raise UnreachableError(
                    f"{self.service}: {url}{path} failed: {str(exc) or type(exc).__name__}"
                ) from exc
        raise UnreachableError(f"{self.service}: no instance answered ({'; '.join(failures)})")

    def _json(self, response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success and body is not None:
            return body
        if isinstance(body, dict) and response.status_code >= 400:
            reason = str(body.get("type", "")).rsplit("/", 1)[-1] or f"http-{response.status_code}"
            detail = str(body.get("detail") or body.get("title") or "")
            raise ProblemAnswerError(self.service, response.status_code, reason, detail)
        raise DeadLetterError(
            f"{self.service}: unexpected answer {response.status_code} to "
            f"{response.request.method} {response.request.url.path}"
        )

    def _parse(self, model: type[Letter], item: Any) -> Letter:
        try:
            return model.model_validate({**item, "service": self.service})
        except (TypeError, ValidationError) as exc:
            raise DeadLetterError(f"{self.service}: unreadable dead letter: {exc}") from exc


def ready_urls(state: SoukState, service: str | None = None) -> dict[str, list[str]]:
    """The URLs of the ready instances of each service (or of one), in topology order."""
    services = list(dict.fromkeys(record.service for record in state.instances))
    if service is not None:
        if service not in services:
            raise UnknownServiceError(
                f"no service {service!r} in the running system (services: {', '.join(services)})"
            )
        services = [service]
    return {
        name: [
            record.url for record in state.of_service(name) if record.state is InstanceState.READY
        ]
        for name in services
    }


def http_client(state: SoukState | None = None) -> httpx.AsyncClient:
    """A client for the local services: no proxy from the environment in between, and the
    instances on Unix sockets (the mesh on) reached on them."""
    return instances.async_client(state.instances if state else (), timeout=REQUEST_TIMEOUT)


async def list_everywhere(
    boxes: list[ServiceDeadLetters], *, include_replayed: bool = False
) -> tuple[list[DeadLetter], dict[str, str]]:
    """Every dead letter of these services, and why each service that could not say failed.

    Services without consumers are left out silently.
    """

    async def one(box: ServiceDeadLetters) -> list[DeadLetter] | str:
        try:
            return await box.list(include_replayed=include_replayed)
        except NoConsumersError:
            return []
        except DeadLetterError as exc:
            return str(exc)

    results = await asyncio.gather(*(one(box) for box in boxes))
    letters = [letter for result in results if isinstance(result, list) for letter in result]
    failures = {
        box.service: result
        for box, result in zip(boxes, results, strict=True)
        if isinstance(result, str)
    }
    return letters, failures
