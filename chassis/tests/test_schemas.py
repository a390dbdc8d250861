"""Shared JSON models: money in minor units of a supported currency, and pages of a listing."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import Field, ValidationError

from chassis.pagination import Page, PageModel
from chassis.schemas import MAX_MINOR_UNITS, MinorUnits, MoneyModel
from contracts import Money


class Price(MoneyModel):
    amount: Annotated[MinorUnits, Field(gt=0)]


def test_money_reads_and_writes_as_minor_units_and_a_currency() -> None:
    model = MoneyModel.model_validate({"amount": -250, "currency": "GBP"})

    assert model.to_money() == Money(-250, "GBP")
    assert MoneyModel.from_money(Money(1299, "EUR")).model_dump() == {
        "amount": 1299,
        "currency": "EUR",
    }


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount": "12", "currency": "EUR"}, "int_type"),
        ({"amount": 12.0, "currency": "EUR"}, "int_type"),
        ({"amount": 12, "currency": "XXX"}, "value_error"),
        ({"amount": 12, "currency": "EUR", "note": "x"}, "extra_forbidden"),
    ],
)
def test_money_refuses_what_is_not_whole_minor_units_of_a_supported_currency(
    body: dict[str, object], code: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        MoneyModel.model_validate(body)

    assert [error["type"] for error in raised.value.errors()] == [code]


def test_a_subclass_narrows_the_amount_and_keeps_the_rest() -> None:
    with pytest.raises(ValidationError) as raised:
        Price.model_validate({"amount": 0, "currency": "EUR"})

    assert [error["type"] for error in raised.value.errors()] == ["greater_than"]
    assert type(Price.from_money(Money(5, "JPY"))) is Price
    amount = Price.model_json_schema()["properties"]["amount"]
    assert amount["exclusiveMinimum"] == 0
    # The bound every amount keeps stays with the narrowed one, and its spec says so.
    assert amount["maximum"] == MAX_MINOR_UNITS
    assert amount["description"].startswith("Minor units: 1299 is 12.99 EUR; at most ")


def test_an_amount_beyond_the_bound_is_refused_either_way() -> None:
    for amount in (MAX_MINOR_UNITS + 1, -MAX_MINOR_UNITS - 1, 2**63, 10**30):
        with pytest.raises(ValidationError):
            MoneyModel.model_validate({"amount": amount, "currency": "EUR"})
    assert MoneyModel.model_validate({"amount": MAX_MINOR_UNITS, "currency": "EUR"})


def test_a_page_model_makes_each_item_public_and_counts_pages_rounding_up() -> None:
    class WordPage(PageModel[str]):
        pass

    page = Page(items=[1, 2], page=2, page_size=2, total=5)

    assert WordPage.of(page, lambda number: f"#{number}").model_dump() == {
        "items": ["#1", "#2"],
        "page": 2,
        "page_size": 2,
        "total": 5,
        "pages": 3,
    }
