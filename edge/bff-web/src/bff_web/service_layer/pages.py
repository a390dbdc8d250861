"""Page-shaped aggregates: each page's data from several services at once, degrading by part.

Calls that do not depend on each other run concurrently, each bounded by its adapter's
timeout. A part the page can live without (the categories, the stock, related products)
is left out with a notice when its service fails; a part the page is about (the product
itself) fails the page with ``UpstreamFailure``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeVar

from bff_web.domain.cart import MAX_QUANTITY
from bff_web.domain.errors import ProductNotFound
from chassis import get_logger
from chassis.upstream import UpstreamFailure

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from bff_web.domain.cart import Cart
    from bff_web.domain.shop import Category, Money, Product, ProductPage, StockLevel
    from bff_web.service_layer.ports import Catalog, Stock

RELATED_PRODUCTS: Final = 4
STOCK_UNAVAILABLE: Final = "Stock levels are unavailable just now; you can still order."
CATEGORIES_UNAVAILABLE: Final = "Categories are unavailable just now."

_log = get_logger("bff_web.pages")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Listing:
    """What a shopper asked the front page for: a shelf, words, a price range, an order.

    Prices are in minor units; ``sort`` is the catalog's (relevance, name, price, -price).
    """

    category: str | None = None
    query: str | None = None
    sort: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    page: int = 1

    @property
    def filtered(self) -> bool:
        return bool(self.category or self.query or self.min_price or self.max_price)


@dataclass(frozen=True, slots=True)
class Storefront:
    """The shop's front page: the categories, and a page of products (maybe filtered)."""

    categories: list[Category]
    products: ProductPage
    category: Category | None
    listing: Listing
    notices: list[str] = field(default_factory=list)

    @property
    def query(self) -> str | None:
        return self.listing.query


@dataclass(frozen=True, slots=True)
class ProductView:
    """A product with its stock (None when inventory could not say), its category (None when
    the catalog could not say) and related products."""

    product: Product
    stock: StockLevel | None
    stock_known: bool
    category: Category | None
    related: list[Product]
    notices: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CartItem:
    """A line of the cart; ``available`` is the stock (None when inventory could not say)."""

    product: Product
    quantity: int
    available: int | None = None

    @property
    def line_total(self) -> Money:
        return self.product.price.times(self.quantity)

    @property
    def problem(self) -> str | None:
        """Why this line cannot be ordered as it is, in words; None if it can."""
        if self.available is None or self.quantity <= self.available:
            return None
        if self.available == 0:
            return f"{self.product.name} has sold out: remove it to check out."
        return f"Only {self.available} of {self.product.name} left: lower the quantity."

    @property
    def most(self) -> int:
        """The most the shopper may ask for: the stock, within one order line's limit."""
        return MAX_QUANTITY if self.available is None else min(self.available, MAX_QUANTITY)


@dataclass(frozen=True, slots=True)
class CartView:
    items: list[CartItem]
    notices: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [problem for item in self.items if (problem := item.problem) is not None]

    @property
    def total(self) -> Money | None:
        """The sum of the lines, or None for an empty cart (or one mixing currencies)."""
        totals = [item.line_total for item in self.items]
        if not totals or len({money.currency for money in totals}) != 1:
            return None
        return type(totals[0])(sum(money.amount for money in totals), totals[0].currency)


def with_delivery(total: Money | None, price: Money | None) -> Money | None:
    """What an order of the cart comes to with its delivery, as orders will charge it (None
    if the sum cannot be told here: no total, or the delivery in another currency)."""
    if total is None or price is None:
        return total
    if price.currency != total.currency:
        return None
    return type(total)(total.amount + price.amount, total.currency)


async def _optional(call: Awaitable[T], what: str) -> T | None:
    """The call's result, or None if its service failed: the page goes on without it."""
    try:
        return await call
    except UpstreamFailure as failure:
        _log.warning("page part unavailable", part=what, error=str(failure))
        return None


async def storefront(catalog: Catalog, listing: Listing, *, page_size: int) -> Storefront:
    """The categories and one page of products, asked for at once."""
    categories, products = await asyncio.gather(
        _optional(catalog.categories(), "categories"),
        catalog.products(
            category=listing.category,
            query=listing.query,
            page=listing.page,
            page_size=page_size,
            sort=listing.sort,
            min_price=listing.min_price,
            max_price=listing.max_price,
        ),
    )
    chosen = next((c for c in categories or [] if c.slug == listing.category), None)
    notices = [] if categories is not None else [CATEGORIES_UNAVAILABLE]
    if listing.category and categories is not None and chosen is None:
        notices.append("There is no such shelf in the souk; here is everything else you asked for.")
    return Storefront(categories or [], products, chosen, listing, notices)


async def product_view(catalog: Catalog, stock: Stock, product_id: str) -> ProductView:
    """A product; then its stock, its category and the category's other products, at once.

    Raises ProductNotFound; UpstreamFailure only if the catalog cannot give the product.
    """
    product = await catalog.product(product_id)
    (level, stock_known), categories, related = await asyncio.gather(
        _stock_of(stock, product.sku),
        _optional(catalog.categories(), "categories"),
        _optional(
            catalog.products(
                category=product.category, query=None, page=1, page_size=RELATED_PRODUCTS + 1
            ),
            "related products",
        ),
    )
    others = [p for p in related.items if p.id != product.id] if related else []
    return ProductView(
        product=product,
        stock=level,
        stock_known=stock_known,
        category=next((c for c in categories or [] if c.slug == product.category), None),
        related=others[:RELATED_PRODUCTS],
        notices=[] if stock_known else [STOCK_UNAVAILABLE],
    )


async def _stock_of(stock: Stock, sku: str) -> tuple[StockLevel | None, bool]:
    """The SKU's stock (None: not stocked) and whether inventory answered at all."""
    try:
        return await stock.level(sku), True
    except UpstreamFailure as failure:
        _log.warning("page part unavailable", part="stock", error=str(failure))
        return None, False


async def stock_of(stock: Stock, product: Product) -> int | None:
    """How many of a product can be ordered: 0 if inventory does not stock it, None if
    inventory could not say (then the order's own reservation decides)."""
    level, known = await _stock_of(stock, product.sku)
    if not known:
        return None
    return 0 if level is None else max(level.available, 0)


async def cart_view(catalog: Catalog, stock: Stock, cart: Cart) -> CartView:
    """The cart's products and their stock, asked for at once; a product gone from the
    catalog leaves the cart.

    Raises UpstreamFailure if the catalog cannot say what the cart holds.
    """
    lines = cart.lines

    async def item(product_id: str, quantity: int) -> CartItem | None:
        try:
            product = await catalog.product(product_id)
        except ProductNotFound:
            return None
        return CartItem(product, quantity, await stock_of(stock, product))

    found = await asyncio.gather(*(item(line.product_id, line.quantity) for line in lines))
    items = [entry for entry in found if entry is not None]
    notices = []
    if len(items) < len(lines):
        for line, entry in zip(lines, found, strict=True):
            if entry is None:
                cart.set_quantity(line.product_id, 0)
        notices.append("A product in your cart is no longer sold; it was taken out.")
    if items and any(item.available is None for item in items):
        notices.append(STOCK_UNAVAILABLE)
    return CartView(items, notices)
