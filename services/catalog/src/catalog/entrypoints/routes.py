"""HTTP routes: parse the request, call the service layer, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.responses import Response

from catalog.domain.errors import StaleProduct
from catalog.domain.model import CATEGORY_SLUG_MAX_LENGTH, CATEGORY_SLUG_PATTERN, Product
from catalog.entrypoints.schemas import (
    CategoryPublic,
    ProductCreate,
    ProductPage,
    ProductPublic,
    ProductUpdate,
)
from catalog.service_layer import handlers, queries
from catalog.service_layer.ports import ProductSort, UnitOfWork, UnitOfWorkFactory
from chassis.auth import require_scopes
from chassis.etags import conditional_json, entity_tags, etag_matches, etag_of
from chassis.openapi import links
from chassis.problems import problem_responses
from chassis.requests import public_path
from chassis.unit_of_work import request_unit_of_work

router = APIRouter(tags=["catalog"])
# A price bound beyond any amount a database integer holds is refused, not overflowed.
MAX_PRICE = 2**62


# A coroutine: FastAPI runs a plain ``def`` dependency on a worker thread.
async def read_only_unit_of_work(request: Request) -> UnitOfWork:
    """A unit of work that only reads, for the queries (see catalog.adapters.reading)."""
    factory: UnitOfWorkFactory = request.app.state.reads_factory
    return factory()


Uow = Annotated[UnitOfWork, Depends(request_unit_of_work)]
Reads = Annotated[UnitOfWork, Depends(read_only_unit_of_work)]
# Browsing is public; changing the catalog takes an admin's token.
CATALOG_WRITE = require_scopes("catalog:write")


@router.get(
    "/products",
    response_model=ProductPage,
    responses=problem_responses(422),
    summary="List products, filtered, searched and paginated",
)
async def list_products(
    *,
    request: Request,
    reads: Reads,
    category: Annotated[
        str | None,
        Query(
            pattern=CATEGORY_SLUG_PATTERN,
            max_length=CATEGORY_SLUG_MAX_LENGTH,
            description="Only products of this category slug.",
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=queries.MAX_SEARCH_LENGTH,
            description="Words to search for in the name, category and description "
            "(full-text: stemmed, each a prefix, all required).",
        ),
    ] = None,
    min_price: Annotated[
        int | None, Query(ge=0, le=MAX_PRICE, description="Lowest price, in minor units.")
    ] = None,
    max_price: Annotated[
        int | None, Query(ge=0, le=MAX_PRICE, description="Highest price, in minor units.")
    ] = None,
    page: Annotated[int, Query(ge=1, le=queries.MAX_PAGE, description="From 1.")] = 1,
    page_size: Annotated[
        int, Query(ge=1, le=queries.MAX_PAGE_SIZE, description="Products per page.")
    ] = queries.DEFAULT_PAGE_SIZE,
    sort: Annotated[
        ProductSort | None,
        Query(description="relevance (the default with q), name (without), price or -price."),
    ] = None,
) -> Response:
    result = await queries.list_products(
        reads,
        category=category,
        q=q,
        page=page,
        page_size=page_size,
        sort=sort,
        min_price=min_price,
        max_price=max_price,
    )
    return conditional_json(request, ProductPage.from_page(result).model_dump(mode="json"))


@router.get(
    "/products/{product_id}",
    response_model=ProductPublic,
    responses={304: {"description": "Not modified (If-None-Match)"}, **problem_responses(404)},
    summary="Get one product, with an ETag",
)
async def get_product(request: Request, product_id: str, reads: Reads) -> Response:
    product = await queries.get_product(reads, product_id)
    return conditional_json(request, _public(product))


@router.post(
    "/products",
    status_code=201,
    response_model=ProductPublic,
    responses={
        **problem_responses(401, 403, 409, 422),
        **links(
            201,
            GetProduct=(
                "get_product_products__product_id__get",
                {"product_id": "$response.body#/id"},
            ),
            UpdateProduct=(
                "update_product_products__product_id__patch",
                {"product_id": "$response.body#/id"},
            ),
        ),
    },
    summary="Create a product (admin: catalog:write)",
    dependencies=[CATALOG_WRITE],
)
async def create_product(request: Request, body: ProductCreate, uow: Uow) -> Response:
    product = await handlers.create_product(body.to_command(), uow)
    location = public_path(request.headers, f"/products/{product.id}")
    return conditional_json(
        request, _public(product), status_code=201, headers={"Location": location}
    )


@router.patch(
    "/products/{product_id}",
    response_model=ProductPublic,
    responses=problem_responses(401, 403, 404, 412, 422),
    summary="Change some fields of a product (admin: catalog:write)",
    dependencies=[CATALOG_WRITE],
)
async def update_product(
    request: Request,
    product_id: str,
    body: ProductUpdate,
    uow: Uow,
    if_match: Annotated[
        str | None,
        Header(description="The product's ETag or version: change only that version."),
    ] = None,
) -> Response:
    expected_version = None
    if if_match is not None:
        current = await queries.get_product(uow, product_id)
        expected_version = _version_named_by(if_match, current, etag_of(_public(current)))
    command = body.to_command(product_id, expected_version=expected_version)
    product = await handlers.update_product(command, uow)
    return conditional_json(request, _public(product))


@router.get(
    "/categories",
    response_model=list[CategoryPublic],
    summary="List categories with their product counts",
)
async def list_categories(request: Request, reads: Reads) -> Response:
    summaries = await queries.list_categories(reads)
    return conditional_json(
        request, [CategoryPublic.from_summary(s).model_dump(mode="json") for s in summaries]
    )


def _public(product: Product) -> dict[str, object]:
    return ProductPublic.from_domain(product).model_dump(mode="json")


def _version_named_by(if_match: str, current: Product, current_etag: str) -> int:
    """The version an If-Match header pins, given as the current ETag or a version number."""
    tags = {tag.removeprefix("W/").strip('"') for tag in entity_tags(if_match)}
    tags.add(if_match.strip())  # a bare version number: If-Match: 3
    if etag_matches(if_match, current_etag, weak=False) or str(current.version) in tags:
        return current.version
    raise StaleProduct(current.id, expected_version=None, actual_version=current.version)
