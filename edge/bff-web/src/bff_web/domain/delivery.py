"""Where and how an order travels, as the checkout's delivery step reads it from its form.

The limits are orders' own (API 1.1's ``delivery``): a form the storefront accepts is one
orders accepts. Both options are free: orders prices no delivery, so the storefront adds
nothing to the total it could not charge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

DELIVERY_OPTIONS: Final = {
    "standard": "Standard delivery — 3 to 5 working days, free",
    "express": "Express delivery — next working day, free",
}
COUNTRIES: Final = {
    "MA": "Morocco",
    "FR": "France",
    "ES": "Spain",
    "BE": "Belgium",
    "NL": "Netherlands",
    "DE": "Germany",
    "GB": "United Kingdom",
}
# Each text field: its label (for errors) and the longest value orders takes.
_TEXT_FIELDS: Final = {
    "name": ("full name", 100),
    "address": ("street address", 300),
    "postcode": ("postcode", 20),
    "city": ("town or city", 100),
}
FIELDS: Final = (*_TEXT_FIELDS, "country", "option")


@dataclass(frozen=True, slots=True)
class Delivery:
    """The recipient, their address, and the delivery option."""

    name: str
    address: str
    postcode: str
    city: str
    country: str
    option: str

    @property
    def option_label(self) -> str:
        return DELIVERY_OPTIONS.get(self.option, self.option)

    @property
    def country_name(self) -> str:
        return COUNTRIES.get(self.country, self.country)

    def to_json(self) -> dict[str, str]:
        return {field: getattr(self, field) for field in FIELDS}


@dataclass(frozen=True, slots=True)
class DeliveryForm:
    """What the shopper typed (trimmed), and each field's error, if any."""

    values: dict[str, str]
    errors: dict[str, str]

    @property
    def delivery(self) -> Delivery | None:
        """The delivery, if the form has no error."""
        return None if self.errors else Delivery(**self.values)


def read_delivery(form: Mapping[str, object]) -> DeliveryForm:
    """The delivery a submitted form describes, each wrong field with its own message."""
    values = {field: _text(form.get(field)) for field in FIELDS}
    values["country"] = values["country"].upper()
    errors: dict[str, str] = {}
    for field, (label, longest) in _TEXT_FIELDS.items():
        if not values[field]:
            errors[field] = f"Enter your {label}."
        elif len(values[field]) > longest:
            errors[field] = f"Your {label} must be at most {longest} characters."
    if values["country"] not in COUNTRIES:
        errors["country"] = "Choose a country we deliver to."
    if values["option"] not in DELIVERY_OPTIONS:
        errors["option"] = "Choose standard or express delivery."
    return DeliveryForm(values, errors)


def has_delivery(form: Mapping[str, object]) -> bool:
    """Whether a checkout form carries a delivery at all (older forms had none)."""
    return any(_text(form.get(field)) for field in FIELDS)


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
