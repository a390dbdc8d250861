"""Which products the home screen features.

A rotation by day: each category's products (in the catalog's order) are turned by the
day's number, then the categories take turns, so the home shows as many categories as it
can, every product gets its day, and one day's pick stays the same all day (a phone's
cached home stays valid until the catalog or the day changes).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bff_mobile.domain.model import ProductCard


def pick_featured(products: Sequence[ProductCard], *, day: int, count: int) -> list[ProductCard]:
    """``count`` of ``products`` for day number ``day`` (a date's ordinal)."""
    by_category: dict[str, list[ProductCard]] = {}
    for product in products:
        by_category.setdefault(product.category, []).append(product)
    turned = [
        members[day % len(members) :] + members[: day % len(members)]
        for _, members in sorted(by_category.items())
    ]
    if turned:
        start = day % len(turned)
        turned = turned[start:] + turned[:start]
    interleaved = (
        product
        for round_ in itertools.zip_longest(*turned)
        for product in round_
        if product is not None
    )
    return list(itertools.islice(interleaved, count))
