"""Read-only HTTP routes for operators: stock levels by SKU, for a token granting stock:read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from chassis.auth import require_scopes
from chassis.problems import problem_responses
from chassis.unit_of_work import request_unit_of_work
from inventory.entrypoints.schemas import StockLevel
from inventory.service_layer import queries
from inventory.service_layer.ports import UnitOfWork

router = APIRouter(
    tags=["inventory"],
    dependencies=[require_scopes("stock:read")],
    responses=problem_responses(401, 403),
)


Uow = Annotated[UnitOfWork, Depends(request_unit_of_work)]


@router.get("/stock/{sku}", summary="The stock of one SKU", responses=problem_responses(404))
async def get_stock(sku: str, uow: Uow) -> StockLevel:
    return StockLevel.from_domain(await queries.stock_level(uow, sku))


@router.get("/stock", summary="The stock of several SKUs (unknown ones are left out)")
async def list_stock(
    uow: Uow,
    skus: Annotated[str, Query(description="Comma-separated SKUs, at most 100.")],
) -> list[StockLevel]:
    wanted = [sku.strip() for sku in skus.split(",") if sku.strip()]
    return [StockLevel.from_domain(item) for item in await queries.stock_levels(uow, wanted)]
