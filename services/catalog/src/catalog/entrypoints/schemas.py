"""The JSON the catalog's HTTP API reads and writes, one model per purpose."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from catalog.domain.commands import CreateProduct, UpdateProduct
from catalog.domain.model import (
    CATEGORY_SLUG_MAX_LENGTH,
    CATEGORY_SLUG_PATTERN,
    DESCRIPTION_MAX_LENGTH,
    NAME_MAX_LENGTH,
    SKU_MAX_LENGTH,
    SKU_PATTERN,
    Product,
)
from catalog.service_layer.ports import CategorySummary
from chassis.pagination import Page, PageModel
from chassis.schemas import MinorUnits, MoneyModel

CategorySlug = Annotated[
    str,
    Field(
        pattern=CATEGORY_SLUG_PATTERN,
        max_length=CATEGORY_SLUG_MAX_LENGTH,
        examples=["tea-coffee"],
    ),
]


class Price(MoneyModel):
    """An amount in integer minor units (cents for EUR) and its ISO 4217 currency."""

    amount: Annotated[MinorUnits, Field(ge=0)]


class ProductPublic(BaseModel):
    """A product as anyone may see it."""

    id: str = Field(examples=["0b0e4d1c-3c1e-5a9e-8f0a-6a2c1f4b7d21"])
    sku: str = Field(examples=["SPC-SAFFRON-2G"])
    name: str = Field(examples=["Taliouine saffron threads, 2 g"])
    description: str
    category: str = Field(examples=["spices"])
    price: Price
    version: int = Field(description="Increases with every change; usable in If-Match.")

    @classmethod
    def from_domain(cls, product: Product) -> ProductPublic:
        return cls(
            id=product.id,
            sku=product.sku,
            name=product.name,
            description=product.description,
            category=product.category,
            price=Price.from_money(product.price),
            version=product.version,
        )


class ProductCreate(BaseModel):
    """A new product, as an admin submits it."""

    model_config = ConfigDict(extra="forbid")

    sku: str = Field(pattern=SKU_PATTERN, max_length=SKU_MAX_LENGTH, examples=["SPC-SAFFRON-2G"])
    name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    description: str = Field(default="", max_length=DESCRIPTION_MAX_LENGTH)
    category: CategorySlug
    price: Price

    def to_command(self) -> CreateProduct:
        return CreateProduct(
            sku=self.sku,
            name=self.name,
            description=self.description,
            category=self.category,
            price=self.price.to_money(),
        )


class ProductUpdate(BaseModel):
    """A partial change to a product: fields left out (or null) stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX_LENGTH)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX_LENGTH)
    category: CategorySlug | None = None
    price: Price | None = None

    def to_command(self, product_id: str, *, expected_version: int | None) -> UpdateProduct:
        return UpdateProduct(
            product_id=product_id,
            name=self.name,
            description=self.description,
            category=self.category,
            price=None if self.price is None else self.price.to_money(),
            expected_version=expected_version,
        )


class ProductPage(PageModel[ProductPublic]):
    """One page of a product listing; ``pages`` is how many pages the whole listing has."""

    @classmethod
    def from_page(cls, page: Page[Product]) -> ProductPage:
        return cls.of(page, ProductPublic.from_domain)


class CategoryPublic(BaseModel):
    """A category with how many products are filed under it."""

    slug: str = Field(examples=["tea-coffee"])
    name: str = Field(examples=["Tea & coffee"])
    product_count: int

    @classmethod
    def from_summary(cls, summary: CategorySummary) -> CategoryPublic:
        return cls(slug=summary.slug, name=summary.name, product_count=summary.product_count)
