"""Billing's settings from BILLING_* variables: the chassis's, its providers and its ledger."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from chassis import ServiceSettings


class BillingSettings(ServiceSettings):
    """The chassis's settings for billing, and the payment providers it uses.

    The providers are named here and found among the upstreams the topology gives billing.
    """

    model_config = SettingsConfigDict(env_prefix="BILLING_")

    service: str = "billing"
    port: int = 8003
    primary_provider: str = "payment-primary"
    backup_provider: str = "payment-backup"
    provider_timeout: float = Field(
        default=2.0, gt=0, description="Seconds a provider has to answer one call."
    )
    idempotency_lease: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Seconds an Idempotency-Key stays locked for a request at the providers; if that "
            "request dies, a retry may take over after this."
        ),
    )

    reconcile_interval: float = Field(
        default=5.0, gt=0, description="Seconds between two rounds of settling unanswered claims."
    )
    settle_after: float = Field(
        default=120.0,
        gt=0,
        description=(
            "Seconds an unanswered claim is left free for its caller's retries before billing "
            "settles it with the provider (longer than the saga's authorize-payment deadline)."
        ),
    )

    ledger_snapshot_every: int = Field(
        default=50,
        ge=0,
        description=(
            "Entries between two snapshots of a customer's account (0: never); loading an "
            "account folds only the entries after its newest snapshot."
        ),
    )
    ledger_attempts: int = Field(
        default=5,
        ge=1,
        description=(
            "Times an entry is decided again when others land on the account first, before "
            "the request is answered 409 account-busy."
        ),
    )

    @model_validator(mode="after")
    def _lease_outlasts_an_authorization(self) -> Self:
        if self.idempotency_lease <= 2 * self.provider_timeout:
            raise ValueError(
                "idempotency_lease must be longer than an authorization can take "
                f"with both providers (2 x provider_timeout = {2 * self.provider_timeout}s)"
            )
        return self
