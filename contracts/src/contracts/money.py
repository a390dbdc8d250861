"""Money as integer minor units with an ISO 4217 currency: never floats."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_CURRENCY = re.compile(r"^[A-Z]{3}$")

# Minor-unit exponents for the currencies Souk prices in; others are refused rather than guessed.
MINOR_UNITS: Final[dict[str, int]] = {
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "CHF": 2,
    "MAD": 2,
    "JPY": 0,
}


class MoneyError(ValueError):
    """An amount or currency that money cannot hold, or arithmetic across currencies."""


class Currency(str):
    """An ISO 4217 code that Souk knows the minor units of."""

    __slots__ = ()

    def __new__(cls, code: str) -> Currency:
        if not _CURRENCY.match(code) or code not in MINOR_UNITS:
            known = ", ".join(sorted(MINOR_UNITS))
            raise MoneyError(f"unsupported currency {code!r}; expected one of {known}")
        return super().__new__(cls, code)

    @property
    def exponent(self) -> int:
        return MINOR_UNITS[self]


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units (cents for EUR) of one currency."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        # bool is an int subclass; True euros is a bug, not a price.
        if type(self.amount) is not int:
            raise MoneyError(f"amount must be an integer of minor units, got {self.amount!r}")
        object.__setattr__(self, "currency", Currency(self.currency))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, quantity: int) -> Money:
        if type(quantity) is not int:
            raise MoneyError(f"money can only be multiplied by a whole quantity, got {quantity!r}")
        return Money(self.amount * quantity, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount <= other.amount

    @property
    def is_negative(self) -> bool:
        return self.amount < 0

    def format(self) -> str:
        """Human form, e.g. ``12.50 EUR``; for display only, never for arithmetic."""
        exponent = Currency(self.currency).exponent
        sign = "-" if self.amount < 0 else ""
        whole, minor = divmod(abs(self.amount), 10**exponent)
        return (
            f"{sign}{whole}.{minor:0{exponent}d} {self.currency}"
            if exponent
            else (f"{sign}{whole} {self.currency}")
        )

    def to_dict(self) -> dict[str, int | str]:
        return {"amount": self.amount, "currency": str(self.currency)}

    def _same_currency(self, other: Money) -> None:
        if self.currency != other.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")
