"""Which products the home features: spread over the categories, a new set each day."""

from __future__ import annotations

from collections import Counter

from bff_mobile.domain.featured import pick_featured
from bff_mobile.domain.model import ProductCard
from contracts import Money


def products(category: str, count: int) -> list[ProductCard]:
    return [
        ProductCard(f"{category}-{n}", f"{category} {n}", category, Money(100, "EUR"))
        for n in range(count)
    ]


CATALOG = products("spices", 5) + products("tea-coffee", 3) + products("ceramics", 2)


def test_the_featured_products_come_from_as_many_categories_as_there_are_slots() -> None:
    featured = pick_featured(CATALOG, day=740_000, count=3)

    assert len(featured) == 3
    assert {p.category for p in featured} == {"spices", "tea-coffee", "ceramics"}


def test_one_day_always_features_the_same_products_and_the_next_day_others() -> None:
    today = pick_featured(CATALOG, day=740_000, count=4)

    assert pick_featured(CATALOG, day=740_000, count=4) == today
    assert pick_featured(CATALOG, day=740_001, count=4) != today


def test_over_enough_days_every_product_is_featured() -> None:
    seen = Counter(
        product.id for day in range(30) for product in pick_featured(CATALOG, day=day, count=3)
    )

    assert set(seen) == {product.id for product in CATALOG}


def test_fewer_products_than_slots_features_them_all_once() -> None:
    featured = pick_featured(CATALOG[:2], day=3, count=6)

    assert sorted(p.id for p in featured) == sorted(p.id for p in CATALOG[:2])


def test_an_empty_catalog_features_nothing() -> None:
    assert pick_featured([], day=1, count=6) == []
