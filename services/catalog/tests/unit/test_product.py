"""The Product aggregate guards the catalog's rules."""

from __future__ import annotations

import uuid
from unittest.mock import ANY

import pytest

from catalog.domain.errors import InvalidProduct, StaleProduct
from catalog.domain.model import NAME_MAX_LENGTH, Product, product_id_for
from contracts import Money
from contracts.events import ProductCreated, ProductUpdated


def new_product(**overrides: object) -> Product:
    fields: dict[str, object] = {
        "sku": "TEA-GUNPOWDER-250G",
        "name": "Gunpowder green tea, 250 g",
        "description": "Tightly rolled green tea.",
        "category": "tea-coffee",
        "price": Money(850, "EUR"),
    }
    fields.update(overrides)
    return Product.create(**fields)  # type: ignore[arg-type]


def test_a_new_product_is_identified_by_a_uuid_derived_from_its_sku() -> None:
    product = new_product()

    assert product.id == product_id_for("TEA-GUNPOWDER-250G") == new_product().id
    assert uuid.UUID(product.id).version == 5
    assert new_product(sku="TEA-VERBENA-80G").id != product.id


def test_a_new_product_starts_at_version_one_and_records_that_it_was_created() -> None:
    product = new_product()

    assert product.version == 1
    assert product.events == [
        ProductCreated(
            product_id=product.id,
            sku="TEA-GUNPOWDER-250G",
            name="Gunpowder green tea, 250 g",
            category="tea-coffee",
            price=Money(850, "EUR"),
            version=1,
            occurred_at=ANY,
        )
    ]


def test_names_and_descriptions_are_kept_without_surrounding_whitespace() -> None:
    product = new_product(name="  Mint tea \n", description=" Fresh. ")

    assert (product.name, product.description) == ("Mint tea", "Fresh.")


@pytest.mark.parametrize("name", ["", "   ", "x" * (NAME_MAX_LENGTH + 1)])
def test_a_product_needs_a_name_of_at_most_200_characters(name: str) -> None:
    with pytest.raises(InvalidProduct) as caught:
        new_product(name=name)

    assert caught.value.field == "name"


def test_a_name_of_exactly_200_characters_is_fine() -> None:
    assert len(new_product(name="x" * NAME_MAX_LENGTH).name) == NAME_MAX_LENGTH


def test_a_description_may_be_empty_but_not_endless() -> None:
    assert new_product(description="").description == ""
    with pytest.raises(InvalidProduct):
        new_product(description="x" * 2001)


@pytest.mark.parametrize("sku", ["SPC-1", "RUG-BENI-OURAIN-170X240", "A1"])
def test_skus_are_upper_case_letters_and_digits_in_dash_separated_groups(sku: str) -> None:
    assert new_product(sku=sku).sku == sku


@pytest.mark.parametrize(
    "sku", ["", "spc-1", "SPC 1", "SPC--1", "-SPC", "SPC-", "SPC_1", "S" * 41, "ÇAY-1"]
)
def test_a_malformed_sku_is_refused(sku: str) -> None:
    with pytest.raises(InvalidProduct) as caught:
        new_product(sku=sku)

    assert caught.value.field == "sku"


@pytest.mark.parametrize("slug", ["Tea", "tea coffee", "tea--coffee", "-tea", "tea_coffee", ""])
def test_a_malformed_category_slug_is_refused(slug: str) -> None:
    with pytest.raises(InvalidProduct) as caught:
        new_product(category=slug)

    assert caught.value.field == "category"


def test_a_product_may_be_free_but_never_negatively_priced() -> None:
    assert new_product(price=Money(0, "EUR")).price == Money(0, "EUR")
    with pytest.raises(InvalidProduct) as caught:
        new_product(price=Money(-1, "EUR"))

    assert caught.value.field == "price"


def test_a_revision_changes_the_given_fields_bumps_the_version_once_and_records_it() -> None:
    product = new_product()
    product.events.clear()

    product.revise(name="Gunpowder tea, 500 g", price=Money(1490, "EUR"))

    assert (product.name, product.price, product.version) == (
        "Gunpowder tea, 500 g",
        Money(1490, "EUR"),
        2,
    )
    assert product.description == "Tightly rolled green tea."
    assert product.events == [
        ProductUpdated(
            product_id=product.id,
            sku="TEA-GUNPOWDER-250G",
            name="Gunpowder tea, 500 g",
            category="tea-coffee",
            price=Money(1490, "EUR"),
            version=2,
            changed=("name", "price"),
            occurred_at=ANY,
        )
    ]


def test_a_revision_that_changes_nothing_keeps_the_version_and_records_nothing() -> None:
    product = new_product()
    product.events.clear()

    product.revise(name="Gunpowder green tea, 250 g", price=Money(850, "EUR"))
    product.revise()

    assert product.version == 1
    assert product.events == []


def test_a_rejected_revision_leaves_the_product_as_it_was() -> None:
    product = new_product()

    with pytest.raises(InvalidProduct):
        product.revise(name="A better name", price=Money(-5, "EUR"))

    assert (product.name, product.price, product.version) == (
        "Gunpowder green tea, 250 g",
        Money(850, "EUR"),
        1,
    )


def test_requiring_another_version_than_the_current_one_is_refused_as_stale() -> None:
    product = new_product()
    product.revise(name="Renamed")

    product.require_version(2)
    with pytest.raises(StaleProduct) as caught:
        product.require_version(1)

    assert (caught.value.expected_version, caught.value.actual_version) == (1, 2)


def test_products_are_the_same_product_when_their_ids_are_equal() -> None:
    product = new_product()
    product_again = new_product(name="Another name")

    assert product == product_again
    assert len({product, product_again}) == 1
    assert product != new_product(sku="TEA-VERBENA-80G")
