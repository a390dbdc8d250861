"""JSON models that several HTTP APIs share, so the same value reads and writes alike."""

from __future__ import annotations

from typing import Annotated, Final, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, StrictInt

from contracts import Currency, Money
from contracts.money import MINOR_UNITS

# The largest amount any API takes or gives: ten billion EUR in cents, far below what a
# 64-bit column holds (2**63 - 1), so a sum of a few thousand of them still fits.
MAX_MINOR_UNITS: Final = 10**12

MinorUnits = Annotated[
    StrictInt,
    Field(
        ge=-MAX_MINOR_UNITS,
        le=MAX_MINOR_UNITS,
        description=f"Minor units: 1299 is 12.99 EUR; at most {MAX_MINOR_UNITS} either way. "
        "Written as a JSON integer: 1299.0 is refused (never floats for money).",
        examples=[1299],
    ),
]
"""An amount in integer minor units; narrow it with ``Annotated[MinorUnits, Field(gt=0)]``."""


_CURRENCIES: list[JsonValue] = [*sorted(MINOR_UNITS)]


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
        description="An ISO 4217 code Souk supports, such as EUR.",
        examples=["EUR"],
        # What _supported_currency takes, so the document says it too.
        json_schema_extra={"enum": _CURRENCIES},
    )

    @classmethod
    def from_money(cls, money: Money) -> Self:
        """The JSON form of ``money``."""
        return cls(amount=money.amount, currency=str(money.currency))

    def to_money(self) -> Money:
        """The Money this JSON stands for."""
        return Money(self.amount, self.currency)
