"""One handler per command: load, act, save, with the provider asked in between.

No transaction stays open while a provider is asked: a provider may take seconds, and
billing's database must not wait on someone else's system.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from billing.domain.errors import (
    AuthorizationLost,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    PaymentAbandoned,
    PaymentNotFound,
    PaymentOutcomeUnknown,
    PaymentStateConflict,
    ProviderUnavailable,
)
from billing.domain.model import Payment, PaymentAction, new_payment_id
from billing.service_layer.ports import (
    AuthorizationUnknown,
    IdempotencyRecord,
    ProviderApproval,
    ProviderOutcomeUnknown,
    ProviderRefused,
    ProviderUnreachable,
)
from chassis import get_logger

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import timedelta

    from billing.domain.commands import (
        AuthorizePayment,
        CapturePayment,
        RefundPayment,
        VoidPayment,
    )
    from billing.service_layer.ports import PaymentProvider, ProviderDecline, UnitOfWork

_log = get_logger("billing.handlers")
_EMPTY_LOOKUPS_TO_SETTLE: Final = 2

_ACTIONS: Final[dict[PaymentAction, Callable[[Payment], None]]] = {
    PaymentAction.CAPTURE: Payment.capture,
    PaymentAction.VOID: Payment.void,
    PaymentAction.REFUND: Payment.refund,
}


@dataclass(frozen=True, slots=True)
class AuthorizationOutcome:
    """The payment a request made, or, for a replay, the one its Idempotency-Key made before."""

    payment: Payment
    replayed: bool


async def authorize_payment(
    command: AuthorizePayment,
    uow: UnitOfWork,
    providers: Sequence[PaymentProvider],
    *,
    lease: timedelta,
) -> AuthorizationOutcome:
    """Hold the amount with the first provider that answers, once per Idempotency-Key.

    Providers are asked in order: one that the request cannot have reached (connection
    refused, 503) is passed over for the next, but a decline is final, and so is a provider
    that may have acted without answering (a timeout): failing over from it could hold the
    amount twice, so the key stays with it and a retry asks it again. If no answer comes,
    no payment is recorded and the key is released: a retry asks again as the same payment.
    ``lease`` is how long the key stays locked for this request at most.
    """
    claim = await _claim(command, uow, lease)
    if isinstance(claim, Payment):
        return AuthorizationOutcome(claim, replayed=True)
    try:
        provider, answer = await _first_answer(command, claim, uow, providers)
    except (ProviderUnavailable, PaymentOutcomeUnknown):
        async with uow:
            # Free now, and when it was freed: an unanswered claim left so long is settled
            # with its provider by ``reconcile_claims``.
            claim.locked_until = datetime.now(UTC)
            await uow.idempotency_keys.save(claim)
            await uow.commit()
        raise
    payment = _payment_from(command, claim.payment_id, provider, answer)
    async with uow:
        claim.locked_until = None
        await uow.idempotency_keys.save(claim)
        await uow.payments.add(payment)
        await uow.commit()
    return AuthorizationOutcome(payment, replayed=False)


async def capture_payment(
    command: CapturePayment, uow: UnitOfWork, providers: Sequence[PaymentProvider]
) -> Payment:
    """Take the authorized amount, at the provider that authorized it."""
    return await _advance(command.payment_id, PaymentAction.CAPTURE, uow, providers)


async def void_payment(
    command: VoidPayment, uow: UnitOfWork, providers: Sequence[PaymentProvider]
) -> Payment:
    """Release the authorized amount, at the provider that authorized it."""
    return await _advance(command.payment_id, PaymentAction.VOID, uow, providers)


async def refund_payment(
    command: RefundPayment, uow: UnitOfWork, providers: Sequence[PaymentProvider]
) -> Payment:
    """Give the captured amount back, through the provider that took it."""
    return await _advance(command.payment_id, PaymentAction.REFUND, uow, providers)


async def reconcile_claims(
    uow: UnitOfWork, providers: Sequence[PaymentProvider], *, settle_after: timedelta
) -> int:
    """Settle every claim whose request a provider never answered; how many were settled.

    Such a request may still have been carried out (a frozen provider works through its
    queue when it wakes): once a claim has been free for ``settle_after`` (longer than any
    caller keeps retrying it), its provider is asked what it holds for the payment, any
    authorization is voided, and the claim is settled so no retry asks again (a provider that
    holds nothing is asked once more a settle-time later first). A provider that
    does not answer leaves the claim for the next round: this runs until every claim is
    settled, so no money stays held that nothing would release.
    """
    async with uow:
        claims = await uow.idempotency_keys.unanswered(datetime.now(UTC) - settle_after)
    settled = 0
    for claim in claims:
        provider = next((p for p in providers if p.name == claim.asked_provider), None)
        if provider is None:
            continue
        try:
            found = await provider.find(claim.payment_id)
            for authorization in found:
                if authorization.holds_money:
                    await provider.void(
                        authorization.reference,
                        idempotency_key=_provider_key(claim.payment_id, PaymentAction.VOID),
                    )
        except (ProviderUnreachable, ProviderRefused, AuthorizationUnknown) as error:
            _log.warning(
                "could not settle an unanswered payment yet",
                provider=provider.name,
                payment_id=claim.payment_id,
                error=str(error),
            )
            continue
        held = sum(authorization.holds_money for authorization in found)
        try:
            async with uow:
                if found:
                    claim.settled = True
                else:
                    claim.empty_lookups += 1
                    claim.settled = claim.empty_lookups >= _EMPTY_LOOKUPS_TO_SETTLE
                    claim.locked_until = datetime.now(UTC)  # look again a settle-time later
                await uow.idempotency_keys.save(claim)
                await uow.commit()
        except IdempotencyKeyInFlight:
            continue  # retried meanwhile: that request decides, and a later round looks again
        if not claim.settled:
            continue
        settled += 1
        _log.warning(
            "settled an unanswered payment with its provider",
            provider=provider.name,
            payment_id=claim.payment_id,
            released=held,
        )
    return settled


async def _claim(
    command: AuthorizePayment, uow: UnitOfWork, lease: timedelta
) -> IdempotencyRecord | Payment:
    """Lock the Idempotency-Key for this request, or find the payment it already made."""
    fingerprint = _fingerprint(command)
    now = datetime.now(UTC)
    async with uow:
        record = await uow.idempotency_keys.get(command.idempotency_key)
        if record is None:
            record = IdempotencyRecord(
                key=command.idempotency_key,
                fingerprint=fingerprint,
                payment_id=new_payment_id(),
                locked_until=now + lease,
            )
            await uow.idempotency_keys.add(record)
        else:
            if record.fingerprint != fingerprint:
                raise IdempotencyKeyReused(command.idempotency_key)
            payment = await uow.payments.get(record.payment_id)
            if payment is not None:
                return payment
            if record.settled:
                raise PaymentAbandoned(command.idempotency_key)
            if record.is_locked(now):
                raise IdempotencyKeyInFlight(command.idempotency_key)
            record.locked_until = now + lease
            await uow.idempotency_keys.save(record)
        await uow.commit()
    return record


async def _first_answer(
    command: AuthorizePayment,
    claim: IdempotencyRecord,
    uow: UnitOfWork,
    providers: Sequence[PaymentProvider],
) -> tuple[str, ProviderApproval | ProviderDecline]:
    # A provider asked before under this key may hold an authorization: only it is asked.
    pinned = claim.asked_provider
    candidates = [p for p in providers if pinned is None or p.name == pinned]
    if pinned is not None and not candidates:
        raise PaymentOutcomeUnknown(pinned, claim.payment_id)
    for provider in candidates:
        # Noted before sending, so that even a crash mid-call keeps retries on this provider.
        await _note_asked(claim, provider.name, uow)
        try:
            answer = await provider.authorize(
                amount=command.amount,
                card_token=command.card_token,
                reference=claim.payment_id,
                idempotency_key=_provider_key(claim.payment_id, "authorize"),
            )
        except ProviderOutcomeUnknown as error:
            _log.warning(
                "payment provider may have acted without answering; not failing over",
                provider=provider.name,
                payment_id=claim.payment_id,
                error=str(error),
            )
            raise PaymentOutcomeUnknown(provider.name, claim.payment_id) from error
        except ProviderUnreachable as error:
            if pinned is not None:
                raise PaymentOutcomeUnknown(provider.name, claim.payment_id) from error
            _log.warning(
                "payment provider unreachable, trying the next",
                provider=provider.name,
                payment_id=claim.payment_id,
                error=str(error),
            )
            await _note_asked(claim, None, uow)  # it never got the request
            continue
        return provider.name, answer
    raise ProviderUnavailable(tuple(provider.name for provider in providers))


async def _note_asked(claim: IdempotencyRecord, provider: str | None, uow: UnitOfWork) -> None:
    async with uow:
        claim.asked_provider = provider
        await uow.idempotency_keys.save(claim)
        await uow.commit()


def _payment_from(
    command: AuthorizePayment,
    payment_id: str,
    provider: str,
    answer: ProviderApproval | ProviderDecline,
) -> Payment:
    now = datetime.now(UTC)
    if isinstance(answer, ProviderApproval):
        return Payment.authorized(
            id=payment_id,
            order_id=command.order_id,
            amount=command.amount,
            provider=provider,
            provider_reference=answer.reference,
            at=now,
            customer_id=command.customer_id,
        )
    return Payment.declined(
        id=payment_id,
        order_id=command.order_id,
        amount=command.amount,
        provider=provider,
        reason=answer.reason,
        at=now,
        customer_id=command.customer_id,
    )


async def _advance(
    payment_id: str, action: PaymentAction, uow: UnitOfWork, providers: Sequence[PaymentProvider]
) -> Payment:
    async with uow:
        payment = await _get(uow, payment_id)
    status = payment.status
    _ACTIONS[action](payment)
    if payment.status is status:
        return payment  # It already happened: a repeat asks nothing of the provider.
    provider = _provider_named(payment.provider, providers)
    try:
        await _ask(provider, action, payment.authorization, _provider_key(payment.id, action))
    except AuthorizationUnknown as error:
        if action is not PaymentAction.VOID:
            raise AuthorizationLost(payment.id, provider.name) from error
        # The provider holds nothing for this payment any more, which is all a void asks.
        _log.warning("voided an authorization the provider no longer knows", payment_id=payment.id)
    except ProviderRefused as error:
        raise PaymentStateConflict(payment.id, status, action) from error
    except ProviderUnreachable as error:
        raise ProviderUnavailable((provider.name,)) from error
    async with uow:
        payment = await _get(uow, payment_id)
        _ACTIONS[action](payment)
        await uow.payments.save(payment)
        await uow.commit()
    return payment


async def _ask(
    provider: PaymentProvider, action: PaymentAction, authorization: str, idempotency_key: str
) -> None:
    match action:
        case PaymentAction.CAPTURE:
            await provider.capture(authorization, idempotency_key=idempotency_key)
        case PaymentAction.VOID:
            await provider.void(authorization, idempotency_key=idempotency_key)
        case PaymentAction.REFUND:
            await provider.refund(authorization, idempotency_key=idempotency_key)


def _provider_named(name: str, providers: Sequence[PaymentProvider]) -> PaymentProvider:
    for provider in providers:
        if provider.name == name:
            return provider
    # Only the provider that authorized a payment can settle it; without it, nothing can.
    _log.error("the provider of a payment is not configured", provider=name)
    raise ProviderUnavailable((name,))


async def _get(uow: UnitOfWork, payment_id: str) -> Payment:
    payment = await uow.payments.get(payment_id)
    if payment is None:
        raise PaymentNotFound(payment_id)
    return payment


def _fingerprint(command: AuthorizePayment) -> str:
    """A digest of what the request asks, so a key sent with another request is recognised.

    The customer is left out: the order decides it, and a retry from a caller that has
    started to send it must still match the request it retries.
    """
    request = [command.order_id, command.amount.amount, command.amount.currency, command.card_token]
    return hashlib.sha256(json.dumps(request).encode()).hexdigest()


def _provider_key(payment_id: str, operation: str) -> str:
    """The Idempotency-Key a provider gets: one per payment and operation, whoever retries."""
    return f"{payment_id}:{operation}"
