"""Where and how an order travels, as the checkout's delivery step reads it from its form.

The limits are orders' own (API 1.1's ``delivery``): a form the storefront accepts is one
orders accepts. Orders prices each option (API 1.2, ``GET /orders/delivery-options``) and
charges it in the order's total: the storefront shows orders' prices, never its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bff_web.domain.shop import Money

DELIVERY_OPTIONS: Final = {
    "standard": "Standard delivery — 3 to 5 working days",
    "express": "Express delivery — next working day",
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
    price: Money | None = None
    """Orders' price of the option; None where unknown (an order placed when all were free)."""

    @property
    def option_label(self) -> str:
        return option_label(self.option, self.price)

    @property
    def price_text(self) -> str:
        """What the delivery costs, in words: "Free", or the price."""
        return price_text(self.price)

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
        if self.errors:
            return None
        values = self.values
        return Delivery(
            name=values["name"],
            address=values["address"],
            postcode=values["postcode"],
            city=values["city"],
            country=values["country"],
            option=values["option"],
        )


def price_text(price: Money | None) -> str:
    return "Free" if price is None or price.amount == 0 else str(price)


def option_label(option: str, price: Money | None) -> str:
    """An option as the shopper chooses it: how fast, and (when known) what it costs."""
    label = DELIVERY_OPTIONS.get(option, option)
    return label if price is None else f"{label}, {price_text(price).lower()}"


def option_labels(prices: Mapping[str, Money]) -> dict[str, str]:
    """Every option's label, with orders' price of it (an option orders did not price,
    without)."""
    return {option: option_label(option, prices.get(option)) for option in DELIVERY_OPTIONS}


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
