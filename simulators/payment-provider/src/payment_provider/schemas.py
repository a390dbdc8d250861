"""The JSON of the provider's API, shaped like a card processor's rather than like Souk's."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from payment_provider.processor import Authorization, AuthorizationStatus

TOKENISED_CARD_PATTERN: Final = r"^tok_[A-Za-z0-9_]{1,64}$"


class Amount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: StrictInt = Field(gt=0, description="Minor units: 1299 is 12.99 EUR.", examples=[1299])
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])


class AuthorizationRequest(BaseModel):
    """Hold an amount on a card."""

    model_config = ConfigDict(extra="forbid")

    amount: Amount
    card_token: str = Field(
        pattern=TOKENISED_CARD_PATTERN,
        description="A tokenised card: tok_decline is declined, any other tok_… is accepted.",
        examples=["tok_ok"],
    )
    reference: str = Field(
        min_length=1, max_length=100, description="The merchant's own reference for the payment."
    )


class AuthorizationPublic(BaseModel):
    id: str = Field(examples=["auth_5f1c0a9e2b7d4c3e8a6f1b2c3d4e5f60"])
    status: AuthorizationStatus
    amount: Amount
    reference: str

    @classmethod
    def of(cls, authorization: Authorization) -> AuthorizationPublic:
        return cls(
            id=authorization.id,
            status=authorization.status,
            amount=Amount(amount=authorization.amount, currency=authorization.currency),
            reference=authorization.reference,
        )
