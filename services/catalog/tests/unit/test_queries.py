"""Queries page, filter, search and sort the catalog, within bounds."""

from __future__ import annotations

import pytest

from catalog.domain.commands import CreateProduct, ImportCatalog
from catalog.domain.errors import ProductNotFound
from catalog.service_layer.handlers import import_catalog
from catalog.service_layer.ports import CategorySummary, ProductSort, UnitOfWork
from catalog.service_layer.queries import MAX_PAGE_SIZE, Page, get_product, list_products
from catalog.service_layer.queries import list_categories as list_categories_query
from contracts import Money


def teas(count: int) -> tuple[CreateProduct, ...]:
    return tuple(
        CreateProduct(
            sku=f"TEA-{number:03d}",
            name=f"Tea number {number:03d}",
            category="tea-coffee",
            price=Money(100 * (count - number), "EUR"),
        )
        for number in range(count)
    )


@pytest.fixture
async def stocked(uow: UnitOfWork) -> UnitOfWork:
    """A catalog of 150 teas and two spices."""
    spices = (
        CreateProduct(
            sku="SPC-CUMIN",
            name="Ground cumin",
            description="Warm and earthy; 100% Moroccan seed.",
            category="spices",
            price=Money(450, "EUR"),
        ),
        CreateProduct(
            sku="SPC-SAFFRON",
            name="Saffron threads",
            description="Honeyed and floral.",
            category="spices",
            price=Money(1490, "EUR"),
        ),
    )
    await import_catalog(ImportCatalog(products=teas(150) + spices), uow)
    return uow


async def test_a_listing_gives_one_page_and_counts_all_matches(stocked: UnitOfWork) -> None:
    page = await list_products(stocked, page=2, page_size=20)

    assert (page.page, page.page_size, page.total, page.pages) == (2, 20, 152, 8)
    assert [p.name for p in page.items][:2] == ["Tea number 018", "Tea number 019"]


async def test_the_page_size_is_capped_at_one_hundred(stocked: UnitOfWork) -> None:
    page = await list_products(stocked, page_size=1000)

    assert page.page_size == MAX_PAGE_SIZE
    assert len(page.items) == MAX_PAGE_SIZE


async def test_pages_and_page_sizes_below_one_are_raised_to_one(stocked: UnitOfWork) -> None:
    page = await list_products(stocked, page=0, page_size=0)

    assert (page.page, page.page_size, len(page.items)) == (1, 1, 1)


async def test_a_page_past_the_end_is_empty(stocked: UnitOfWork) -> None:
    page = await list_products(stocked, page=99, page_size=20)

    assert (page.items, page.total) == ([], 152)


async def test_a_listing_can_keep_to_one_category(stocked: UnitOfWork) -> None:
    page = await list_products(stocked, category="spices")

    assert [p.sku for p in page.items] == ["SPC-CUMIN", "SPC-SAFFRON"]


async def test_a_search_matches_names_and_descriptions_in_any_case(stocked: UnitOfWork) -> None:
    by_name = await list_products(stocked, q="SAFFRON")
    by_description = await list_products(stocked, q="earthy")

    assert [p.sku for p in by_name.items] == ["SPC-SAFFRON"]
    assert [p.sku for p in by_description.items] == ["SPC-CUMIN"]


async def test_a_blank_search_matches_everything(stocked: UnitOfWork) -> None:
    assert (await list_products(stocked, q="   ")).total == 152


async def test_a_listing_can_be_sorted_by_price_either_way(stocked: UnitOfWork) -> None:
    cheapest = await list_products(stocked, sort=ProductSort.PRICE, page_size=2)
    dearest = await list_products(stocked, sort=ProductSort.PRICE_DESCENDING, page_size=2)

    assert [p.price.amount for p in cheapest.items] == [100, 200]
    assert [p.price.amount for p in dearest.items] == [15000, 14900]


async def test_asking_for_an_unknown_product_raises_not_found(uow: UnitOfWork) -> None:
    with pytest.raises(ProductNotFound):
        await get_product(uow, "no-such-id")


async def test_categories_are_listed_by_name_with_their_product_counts(
    stocked: UnitOfWork,
) -> None:
    assert await list_categories_query(stocked) == [
        CategorySummary(slug="ceramics", name="Ceramics", product_count=0),
        CategorySummary(slug="spices", name="Spices", product_count=2),
        CategorySummary(slug="tea-coffee", name="Tea & coffee", product_count=150),
    ]


@pytest.mark.parametrize(
    ("total", "page_size", "pages"), [(0, 20, 0), (1, 20, 1), (20, 20, 1), (21, 20, 2)]
)
def test_the_number_of_pages_rounds_up(total: int, page_size: int, pages: int) -> None:
    assert Page(items=[], page=1, page_size=page_size, total=total).pages == pages
