"""The demo catalog Souk ships is big, varied, valid and deterministic."""

from __future__ import annotations

from catalog.adapters.demo_catalog import load_demo_catalog
from catalog.domain.model import Product


def test_the_demo_catalog_has_at_least_sixty_products_in_at_least_six_categories() -> None:
    products = load_demo_catalog().products

    assert len(products) >= 60
    assert len({p.category for p in products}) >= 6


def test_every_demo_product_is_valid_priced_in_euro_cents_and_has_its_own_sku() -> None:
    products = load_demo_catalog().products

    created = [
        Product.create(
            sku=p.sku, name=p.name, description=p.description, category=p.category, price=p.price
        )
        for p in products
    ]
    assert len({p.sku for p in created}) == len(created)
    assert {p.price.currency for p in created} == {"EUR"}
    assert all(p.price.amount > 0 and p.description for p in created)


def test_loading_the_demo_catalog_twice_gives_the_same_products() -> None:
    assert load_demo_catalog() == load_demo_catalog()
