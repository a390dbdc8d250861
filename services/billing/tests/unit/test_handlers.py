"""Handlers authorize with failover, settle at the authorizing provider, and replay by key."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from billing.domain.commands import AuthorizePayment, CapturePayment, RefundPayment, VoidPayment
from billing.domain.errors import (
    AuthorizationLost,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    PaymentNotFound,
    PaymentStateConflict,
    ProviderUnavailable,
)
from billing.domain.model import PaymentStatus
from billing.service_layer.handlers import (
    authorize_payment,
    capture_payment,
    refund_payment,
    void_payment,
)
from billing.service_layer.queries import get_payment, payments_of_order
from contracts import Money

from .conftest import LEASE
from .fakes import DECLINING_CARD

if TYPE_CHECKING:
    from billing.domain.model import Payment

    from .fakes import FakeProvider, FakeUnitOfWork


async def authorized_payment(
    command: AuthorizePayment, uow: FakeUnitOfWork, providers: list[FakeProvider]
) -> Payment:
    return (await authorize_payment(command, uow, providers, lease=LEASE)).payment


async def test_a_payment_is_authorized_by_the_primary_when_it_answers(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    backup: FakeProvider,
) -> None:
    outcome = await authorize_payment(saffron_order, uow, providers, lease=LEASE)

    stored = await get_payment(uow, outcome.payment.id)
    assert (stored.status, stored.provider, stored.amount, outcome.replayed) == (
        PaymentStatus.AUTHORIZED,
        "payment-primary",
        Money(1490, "EUR"),
        False,
    )
    assert backup.calls == []


async def test_when_the_primary_cannot_be_reached_the_backup_authorizes(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    primary: FakeProvider,
) -> None:
    primary.reachable = False

    payment = await authorized_payment(saffron_order, uow, providers)

    assert (payment.status, payment.provider) == (PaymentStatus.AUTHORIZED, "payment-backup")
    assert primary.operations() == ["authorize"]


async def test_a_decline_is_recorded_and_never_retried_on_the_backup(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    backup: FakeProvider,
) -> None:
    command = dataclasses.replace(saffron_order, card_token=DECLINING_CARD)

    payment = await authorized_payment(command, uow, providers)

    stored = await get_payment(uow, payment.id)
    assert (stored.status, stored.decline_reason) == (PaymentStatus.DECLINED, "card_declined")
    assert backup.calls == []


async def test_when_no_provider_answers_nothing_is_recorded(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    primary: FakeProvider,
    backup: FakeProvider,
) -> None:
    primary.reachable = backup.reachable = False

    with pytest.raises(ProviderUnavailable) as caught:
        await authorized_payment(saffron_order, uow, providers)

    assert caught.value.providers == ("payment-primary", "payment-backup")
    assert await payments_of_order(uow, "order-1") == []


async def test_a_retry_after_no_provider_answered_asks_them_again_as_the_same_payment(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    primary: FakeProvider,
    backup: FakeProvider,
) -> None:
    primary.reachable = backup.reachable = False
    with pytest.raises(ProviderUnavailable):
        await authorized_payment(saffron_order, uow, providers)
    primary.reachable = True

    payment = await authorized_payment(saffron_order, uow, providers)

    assert payment.status is PaymentStatus.AUTHORIZED
    # The same provider key both times: had the first attempt gone through after all,
    # the provider would replay it instead of holding the money twice.
    assert primary.calls == [("authorize", f"{payment.id}:authorize")] * 2


async def test_a_replay_returns_the_same_payment_without_asking_a_provider_again(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    primary: FakeProvider,
) -> None:
    first = await authorize_payment(saffron_order, uow, providers, lease=LEASE)
    again = await authorize_payment(saffron_order, uow, providers, lease=LEASE)

    assert (again.payment.id, again.payment.status, again.replayed) == (
        first.payment.id,
        PaymentStatus.AUTHORIZED,
        True,
    )
    assert primary.operations() == ["authorize"]
    assert len(await payments_of_order(uow, "order-1")) == 1


async def test_a_replayed_decline_stays_declined_without_asking_a_provider_again(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    primary: FakeProvider,
) -> None:
    command = dataclasses.replace(saffron_order, card_token=DECLINING_CARD)
    await authorized_payment(command, uow, providers)

    again = await authorize_payment(command, uow, providers, lease=LEASE)

    assert (again.payment.status, again.replayed) == (PaymentStatus.DECLINED, True)
    assert primary.operations() == ["authorize"]


@pytest.mark.parametrize(
    "change",
    [
        {"amount": Money(9990, "EUR")},
        {"order_id": "order-2"},
        {"card_token": "tok_other"},
        {"amount": Money(1490, "USD")},
    ],
)
async def test_a_key_sent_again_with_another_request_is_refused(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    primary: FakeProvider,
    change: dict[str, object],
) -> None:
    await authorized_payment(saffron_order, uow, providers)

    with pytest.raises(IdempotencyKeyReused):
        await authorized_payment(dataclasses.replace(saffron_order, **change), uow, providers)  # type: ignore[arg-type]

    assert primary.operations() == ["authorize"]


async def test_a_request_whose_key_is_still_at_the_provider_is_told_so(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    primary: FakeProvider,
) -> None:
    primary.hold = asyncio.Event()
    first = asyncio.create_task(authorized_payment(saffron_order, uow, providers))
    await primary.called.wait()

    with pytest.raises(IdempotencyKeyInFlight):
        await authorized_payment(saffron_order, uow, providers)

    primary.hold.set()
    payment = await first
    assert payment.status is PaymentStatus.AUTHORIZED
    assert primary.operations() == ["authorize"]


async def test_a_key_locked_longer_than_its_lease_is_taken_over_as_the_same_payment(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    primary: FakeProvider,
) -> None:
    primary.hold = asyncio.Event()
    stuck = asyncio.create_task(
        authorize_payment(saffron_order, uow, providers, lease=timedelta(0))
    )
    await primary.called.wait()

    primary.hold.set()
    retry = await authorize_payment(saffron_order, uow, providers, lease=LEASE)

    assert retry.payment.status is PaymentStatus.AUTHORIZED
    assert [key for _, key in primary.calls] == [f"{retry.payment.id}:authorize"] * 2
    # The request that lost its lock learns the key moved on; its payment is the retry's.
    with pytest.raises(IdempotencyKeyInFlight):
        await stuck
    assert [p.id for p in await payments_of_order(uow, "order-1")] == [retry.payment.id]


async def test_a_capture_goes_to_the_provider_that_authorized_the_payment(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    primary: FakeProvider,
    backup: FakeProvider,
) -> None:
    primary.reachable = False
    payment = await authorized_payment(saffron_order, uow, providers)
    primary.reachable = True

    captured = await capture_payment(CapturePayment(payment.id), uow, providers)

    assert captured.status is PaymentStatus.CAPTURED
    assert (await get_payment(uow, payment.id)).status is PaymentStatus.CAPTURED
    assert backup.calls == [
        ("authorize", f"{payment.id}:authorize"),
        ("capture", f"{payment.id}:capture"),
    ]
    assert primary.operations() == ["authorize"]


async def test_a_repeated_capture_changes_nothing_and_asks_nothing_of_the_provider(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    primary: FakeProvider,
) -> None:
    payment = await authorized_payment(saffron_order, uow, providers)
    await capture_payment(CapturePayment(payment.id), uow, providers)

    again = await capture_payment(CapturePayment(payment.id), uow, providers)

    assert again.status is PaymentStatus.CAPTURED
    assert primary.operations() == ["authorize", "capture"]


async def test_a_captured_payment_is_refunded_through_its_provider(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    primary: FakeProvider,
) -> None:
    payment = await authorized_payment(saffron_order, uow, providers)
    await capture_payment(CapturePayment(payment.id), uow, providers)

    refunded = await refund_payment(RefundPayment(payment.id), uow, providers)

    assert refunded.status is PaymentStatus.REFUNDED
    assert primary.calls[-1] == ("refund", f"{payment.id}:refund")


async def test_voiding_an_authorized_payment_releases_it_at_its_provider(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    primary: FakeProvider,
) -> None:
    payment = await authorized_payment(saffron_order, uow, providers)

    voided = await void_payment(VoidPayment(payment.id), uow, providers)

    assert voided.status is PaymentStatus.VOIDED
    assert primary.operations() == ["authorize", "void"]


async def test_a_capture_while_its_provider_is_down_fails_over_to_no_one_and_changes_nothing(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    primary: FakeProvider,
    backup: FakeProvider,
) -> None:
    payment = await authorized_payment(saffron_order, uow, providers)
    primary.reachable = False

    with pytest.raises(ProviderUnavailable) as caught:
        await capture_payment(CapturePayment(payment.id), uow, providers)

    assert caught.value.providers == ("payment-primary",)
    assert (await get_payment(uow, payment.id)).status is PaymentStatus.AUTHORIZED
    assert backup.calls == []


async def test_a_payment_whose_authorization_the_provider_forgot_can_be_voided_not_captured(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    primary: FakeProvider,
) -> None:
    payment = await authorized_payment(saffron_order, uow, providers)
    primary.forgetful = True

    with pytest.raises(AuthorizationLost):
        await capture_payment(CapturePayment(payment.id), uow, providers)
    voided = await void_payment(VoidPayment(payment.id), uow, providers)

    assert voided.status is PaymentStatus.VOIDED


async def test_when_the_provider_refuses_the_change_it_is_a_conflict(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    primary: FakeProvider,
) -> None:
    payment = await authorized_payment(saffron_order, uow, providers)
    primary.refusing = True

    with pytest.raises(PaymentStateConflict):
        await capture_payment(CapturePayment(payment.id), uow, providers)

    assert (await get_payment(uow, payment.id)).status is PaymentStatus.AUTHORIZED


async def test_a_change_the_status_does_not_allow_never_reaches_the_provider(
    saffron_order: AuthorizePayment,
    uow: FakeUnitOfWork,
    providers: list[FakeProvider],
    primary: FakeProvider,
) -> None:
    payment = await authorized_payment(saffron_order, uow, providers)

    with pytest.raises(PaymentStateConflict):
        await refund_payment(RefundPayment(payment.id), uow, providers)

    assert primary.operations() == ["authorize"]


@pytest.mark.parametrize("handler", [capture_payment, void_payment, refund_payment])
async def test_an_unknown_payment_is_not_found(
    uow: FakeUnitOfWork, providers: list[FakeProvider], handler: object
) -> None:
    commands = {
        capture_payment: CapturePayment,
        void_payment: VoidPayment,
        refund_payment: RefundPayment,
    }

    with pytest.raises(PaymentNotFound):
        await handler(commands[handler]("no-such-payment"), uow, providers)  # type: ignore[operator,index]


async def test_the_payments_of_an_order_are_listed_oldest_first(
    saffron_order: AuthorizePayment, uow: FakeUnitOfWork, providers: list[FakeProvider]
) -> None:
    first = await authorized_payment(
        dataclasses.replace(saffron_order, card_token=DECLINING_CARD), uow, providers
    )
    second = await authorized_payment(
        dataclasses.replace(saffron_order, idempotency_key="key-2"), uow, providers
    )
    await authorized_payment(
        dataclasses.replace(saffron_order, order_id="order-2", idempotency_key="key-3"),
        uow,
        providers,
    )

    listed = await payments_of_order(uow, "order-1")

    assert [(p.id, p.status) for p in listed] == [
        (first.id, PaymentStatus.DECLINED),
        (second.id, PaymentStatus.AUTHORIZED),
    ]


async def test_the_customer_the_request_names_is_kept_with_the_payment(
    saffron_order: AuthorizePayment, uow: FakeUnitOfWork, providers: list[FakeProvider]
) -> None:
    command = dataclasses.replace(saffron_order, customer_id="customer-7")

    payment = await authorized_payment(command, uow, providers)

    assert (await get_payment(uow, payment.id)).customer_id == "customer-7"


async def test_a_retry_that_now_names_the_customer_replays_the_same_payment(
    saffron_order: AuthorizePayment, uow: FakeUnitOfWork, providers: list[FakeProvider]
) -> None:
    first = await authorized_payment(saffron_order, uow, providers)

    retry = dataclasses.replace(saffron_order, customer_id="customer-7")
    outcome = await authorize_payment(retry, uow, providers, lease=LEASE)

    assert (outcome.payment.id, outcome.replayed) == (first.id, True)
