"""JSON models that several HTTP APIs share, so the same value reads and writes alike."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from contracts import Currency, Money

MinorUnits = Annotated[
    StrictInt, Field(description="Minor units: 1299 is 12.99 EUR.", examples=[1299])
]
"""An amount in integer minor units; narrow it with ``Annotated[MinorUnits, Field(gt=0)]``."""


def _supported_currency(code: str) -> str:
    # Currency raises MoneyError, a ValueError, which pydantic reports as a validation error.
    return str(Currency(code))


class MoneyModel(BaseModel):
    """An amount in integer minor units (cents for EUR) and its ISO 4217 currency.

    A service that allows only some amounts subclasses it and narrows ``amount``.
    """

    model_config = ConfigDict(extra="forbid")

    amount: MinorUnits
    currency: Annotated[str, AfterValidator(_supported_currency)] = Field(
        description="An ISO 4217 code Souk supports, such as EUR.", examples=["EUR"]
    )

    @classmethod
    def from_money(cls, money: Money) -> Self:
        """The JSON form of ``money``."""
        return cls(amount=money.amount, currency=str(money.currency))

    def to_money(self) -> Money:
        """The Money this JSON stands for."""
        return Money(self.amount, self.currency)
