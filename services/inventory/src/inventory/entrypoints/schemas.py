"""The HTTP API's documents."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from inventory.domain.model import StockItem


class StockLevel(BaseModel):
    """The units of one SKU: on hand, reserved, and available (on hand less reserved)."""

    sku: str = Field(examples=["SPC-SAFFRON-2G"])
    on_hand: int
    reserved: int
    available: int

    @classmethod
    def from_domain(cls, item: StockItem) -> StockLevel:
        return cls(
            sku=item.sku, on_hand=item.on_hand, reserved=item.reserved, available=item.available
        )
