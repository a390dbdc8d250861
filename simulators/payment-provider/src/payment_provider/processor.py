"""The simulated processor's books: authorizations, their lifecycle and idempotent replays.

Everything is kept in memory, as someone else's system would keep it out of our reach:
a restart forgets every authorization, which its clients have to cope with.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class AuthorizationStatus(StrEnum):
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    VOIDED = "voided"
    REFUNDED = "refunded"


class Operation(StrEnum):
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"


# Each operation moves an authorization from one status to the next, and only from there.
_TRANSITIONS: Final = {
    Operation.CAPTURE: (AuthorizationStatus.AUTHORIZED, AuthorizationStatus.CAPTURED),
    Operation.VOID: (AuthorizationStatus.AUTHORIZED, AuthorizationStatus.VOIDED),
    Operation.REFUND: (AuthorizationStatus.CAPTURED, AuthorizationStatus.REFUNDED),
}

# The test cards the issuer refuses, and the reason it gives.
DECLINED_CARDS: Final = {"tok_decline": "card_declined"}


@dataclass(frozen=True, slots=True)
class Authorization:
    id: str
    amount: int
    currency: str
    reference: str
    status: AuthorizationStatus


class ProcessorError(Exception):
    """The processor refuses a request."""


class CardDeclined(ProcessorError):  # noqa: N818 - the processor's words
    def __init__(self, reason: str) -> None:
        super().__init__(f"the issuer declined the card: {reason}")
        self.reason = reason


class AuthorizationNotFound(ProcessorError):  # noqa: N818 - the processor's words
    def __init__(self, authorization_id: str) -> None:
        super().__init__(f"no authorization with id {authorization_id!r}")
        self.authorization_id = authorization_id


class AuthorizationStateConflict(ProcessorError):  # noqa: N818 - the processor's words
    def __init__(self, authorization: Authorization, operation: Operation) -> None:
        super().__init__(
            f"cannot {operation} authorization {authorization.id!r}: it is {authorization.status}"
        )
        self.authorization_id = authorization.id
        self.status = authorization.status


class IdempotencyKeyReused(ProcessorError):  # noqa: N818 - the processor's words
    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was already used for a different request")
        self.key = key


Outcome = Authorization | CardDeclined


class CardProcessor:
    """Authorizes, captures, voids and refunds; a repeated Idempotency-Key replays its outcome."""

    def __init__(self) -> None:
        self._authorizations: dict[str, Authorization] = {}
        self._outcomes: dict[str, tuple[tuple[str, ...], Outcome]] = {}

    def authorize(
        self, *, amount: int, currency: str, card_token: str, reference: str, idempotency_key: str
    ) -> Authorization:
        request = ("authorize", str(amount), currency, card_token, reference)
        return self._once(
            idempotency_key,
            request,
            lambda: self._authorize(amount, currency, card_token, reference),
        )

    def perform(
        self, operation: Operation, authorization_id: str, *, idempotency_key: str | None
    ) -> Authorization:
        """Capture, void or refund an authorization in full."""
        request = (str(operation), authorization_id)
        return self._once(
            idempotency_key, request, lambda: self._transition(authorization_id, operation)
        )

    def find(self, reference: str) -> list[Authorization]:
        """The authorizations made for one merchant reference, oldest first."""
        return [a for a in self._authorizations.values() if a.reference == reference]

    def all(self) -> list[Authorization]:
        """Every authorization in the books, oldest first."""
        return list(self._authorizations.values())

    def get(self, authorization_id: str) -> Authorization:
        authorization = self._authorizations.get(authorization_id)
        if authorization is None:
            raise AuthorizationNotFound(authorization_id)
        return authorization

    def _authorize(self, amount: int, currency: str, card_token: str, reference: str) -> Outcome:
        if card_token in DECLINED_CARDS:
            return CardDeclined(DECLINED_CARDS[card_token])
        authorization = Authorization(
            id=f"auth_{uuid.uuid4().hex}",
            amount=amount,
            currency=currency,
            reference=reference,
            status=AuthorizationStatus.AUTHORIZED,
        )
        self._authorizations[authorization.id] = authorization
        return authorization

    def _transition(self, authorization_id: str, operation: Operation) -> Outcome:
        authorization = self.get(authorization_id)
        source, target = _TRANSITIONS[operation]
        if authorization.status is not source:
            raise AuthorizationStateConflict(authorization, operation)
        changed = dataclasses.replace(authorization, status=target)
        self._authorizations[changed.id] = changed
        return changed

    def _once(
        self, key: str | None, request: tuple[str, ...], operation: Callable[[], Outcome]
    ) -> Authorization:
        # Only outcomes are remembered: a request refused for its state or a missing
        # authorization changed nothing, so repeating it may well succeed later.
        if key is not None and key in self._outcomes:
            seen, outcome = self._outcomes[key]
            if seen != request:
                raise IdempotencyKeyReused(key)
        else:
            outcome = operation()
            if key is not None:
                self._outcomes[key] = (request, outcome)
        if isinstance(outcome, CardDeclined):
            raise CardDeclined(outcome.reason)
        return outcome
