"""Calling another REST service: its replicas round robin through the process's aiohttp session.

Every caller of a REST upstream (orders, the BFFs) uses this one client; ``UpstreamFailure`` is
what it raises when there is no usable answer, and what service layers catch.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from chassis.auth import TokenUnavailableError
from chassis.requests import outbound_headers
from chassis.resilience import BulkheadFull, CircuitOpen, DeadlineExceeded, DependencyPolicy

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from chassis.auth import AccessTokenSource
    from chassis.resilience import Resilience

# Answers that say "not now" rather than "no": the same request may succeed later.
_TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# Requests whose repetition has the effect of one: safe to retry without a key.
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    """The decoded JSON body, or None if there was none."""

    def problem_detail(self) -> str:
        """The detail (or title) of a problem+json answer, for messages and reasons."""
        if isinstance(self.body, dict):
            return str(self.body.get("detail") or self.body.get("title") or self.status)
        return f"HTTP {self.status}"

    def problem_type(self) -> str:
        """The slug of a problem+json answer's type (``product-not-found``), or ''."""
        if isinstance(self.body, dict):
            return str(self.body.get("type", "")).rsplit("/", 1)[-1]
        return ""


class UpstreamFailure(Exception):  # noqa: N818 - a state of another service, not a bug of ours
    """Another service gave no usable answer: whether the call took effect is unknown.

    ``transient`` failures (a refused connection, a timeout, 503, gRPC UNAVAILABLE) are worth
    retrying soon; the others (an answer the port cannot make sense of) are not.
    ``its_own`` is False when the upstream answered that a dependency of its own is
    unavailable: it is alive and said so, and its breaker does not count the failure.
    """

    def __init__(
        self, upstream: str, message: str, *, transient: bool, its_own: bool = True
    ) -> None:
        super().__init__(f"{upstream}: {message}")
        self.upstream = upstream
        self.transient = transient
        self.its_own = its_own


class HttpUpstream:
    """Calls one upstream's instances in turn; the next call goes to the next instance.

    Every call carries the request id and trace context, the caller's own access token if
    ``tokens`` is given (or the headers the call names, such as a user's token), and has a
    timeout. A failure to reach an instance, or an answer that says to come back later,
    raises a transient
    UpstreamFailure: the caller's retry then lands on the next instance.

    With ``resilience`` (the process's ``app.state.resilience``), every call goes through
    the upstream's breaker and bulkhead, within its timeout and the request's deadline; a
    call that is safe to repeat (an idempotent method, or one with an ``Idempotency-Key``) is
    retried on the next instance within the retry budget. A call the breaker or bulkhead
    refuses, or one past the deadline, raises a transient UpstreamFailure unsent.

    ``dependency_problems``: the problem types with which the upstream answers that a
    dependency of its own is down (billing's ``payment-outcome-unknown``: a payment provider
    did not answer). They are transient like any 503, and retried as such, but do not count
    against the upstream's breaker: it answered at once, and opening its breaker would refuse
    every other call it could serve (new payments billing would send to the backup provider).
    """

    def __init__(
        self,
        name: str,
        urls: Sequence[str],
        session: aiohttp.ClientSession,
        *,
        timeout: float,
        connect_timeout: float,
        tokens: AccessTokenSource | None = None,
        resilience: Resilience | None = None,
        dependency_problems: Collection[str] = (),
    ) -> None:
        self.name = name
        self._dependency_problems = frozenset(dependency_problems)
        # Two tries, each within ``timeout``: the second lands on the next instance.
        self._pipeline = (
            None
            if resilience is None
            else resilience.pipeline(name, DependencyPolicy(timeout=2 * timeout, attempts=2))
        )
        self._tokens = tokens
        self._bases = itertools.cycle([url.rstrip("/") for url in urls])
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """The answer to one request; raises UpstreamFailure if there is no usable one."""
        if self._pipeline is None:
            return await self._send(method, path, body, headers)
        safe = method in _IDEMPOTENT_METHODS or any(
            key.lower() == "idempotency-key" for key in headers or {}
        )
        try:
            return await self._pipeline.call(
                lambda: self._send(method, path, body, headers),
                is_failure=_is_its_failure,
                retry_on=_is_transient if safe else _never,
            )
        except (CircuitOpen, BulkheadFull, DeadlineExceeded) as error:
            raise UpstreamFailure(self.name, f"{method} {path}: {error}", transient=True) from error

    async def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> Answer:
        url = next(self._bases) + path
        sent = {
            **outbound_headers(),
            **(await self._authorization(method, path)),
            **(headers or {}),
        }
        try:
            async with self._session.request(
                method,
                url,
                json=body,
                headers=sent,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                status = response.status
                raw = await response.read()
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as error:
            raise UpstreamFailure(
                self.name,
                f"{method} {path}: {type(error).__name__} {error}".rstrip(),
                transient=True,
            ) from error
        answer = Answer(status, _decoded(raw))
        if status in _TRANSIENT_STATUSES:
            raise UpstreamFailure(
                self.name,
                f"{method} {path} answered {status}: {answer.problem_detail()}",
                transient=True,
                its_own=answer.problem_type() not in self._dependency_problems,
            )
        return answer

    async def _authorization(self, method: str, path: str) -> dict[str, str]:
        if self._tokens is None:
            return {}
        try:
            return {"Authorization": f"Bearer {await self._tokens.token()}"}
        except TokenUnavailableError as error:
            raise UpstreamFailure(
                self.name, f"{method} {path}: {error}", transient=error.transient
            ) from error

    def unexpected(self, method: str, path: str, answer: Answer) -> UpstreamFailure:
        """The failure to raise for an answer the caller cannot make sense of."""
        return UpstreamFailure(
            self.name,
            f"{method} {path} answered {answer.status} unexpectedly: {answer.problem_detail()}",
            transient=False,
        )


def _is_transient(error: BaseException) -> bool:
    return isinstance(error, UpstreamFailure) and error.transient


def _is_its_failure(error: BaseException) -> bool:
    """What counts against the upstream's breaker: a transient failure of its own."""
    return isinstance(error, UpstreamFailure) and error.transient and error.its_own


def _never(_: BaseException) -> bool:
    return False


def _decoded(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
