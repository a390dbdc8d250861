"""A rejected order's reason, as orders words it, explained to the shopper in words."""

from __future__ import annotations

import pytest

from bff_web.domain.shop import explain_rejection

NAMES = {"LMP-CEILING-LIGHT-COPPER": "Copper ceiling light", "SPC-SAFFRON-2G": "Saffron threads"}


def test_a_declined_card_says_nothing_was_charged_and_offers_another_card() -> None:
    said = explain_rejection("payment declined: card_declined", NAMES)
    assert said == (
        "Your card was declined. Nothing was charged. Try again, or pay with another card."
    )


def test_a_shortage_names_the_products_and_how_many_are_left() -> None:
    said = explain_rejection(
        "out of stock: LMP-CEILING-LIGHT-COPPER (2 available), SPC-SAFFRON-2G (0 available)",
        NAMES,
    )
    assert "Copper ceiling light: only 2 left, fewer than you asked for." in said
    assert "Saffron threads has sold out." in said
    assert "LMP-" not in said
    assert "Nothing was charged." in said


@pytest.mark.parametrize(
    "reason",
    [
        "payment declined: some_new_code",
        "out of stock: inventory said no",
        "reservation got no answer in 5 s",
        "unknown product 42",
        None,
    ],
)
def test_no_reason_code_reaches_the_shopper(reason: str | None) -> None:
    said = explain_rejection(reason, NAMES)
    assert "_" not in said
    assert ":" not in said.replace("Copper ceiling light:", "")
    assert "Nothing was charged." in said
