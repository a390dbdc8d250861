"""What a mobile request can get wrong, in the shop's words."""

from __future__ import annotations


class MobileError(Exception):
    """A request the mobile API refuses."""


class ProductNotFound(MobileError):
    def __init__(self, product_id: str) -> None:
        super().__init__(f"there is no product {product_id!r} in the catalog")
        self.product_id = product_id


class CartFull(MobileError):
    def __init__(self, max_lines: int) -> None:
        super().__init__(f"a cart holds at most {max_lines} different products")
        self.max_lines = max_lines


class InvalidQuantity(MobileError):
    def __init__(self, quantity: int, max_quantity: int) -> None:
        super().__init__(f"a quantity is from 1 to {max_quantity}, not {quantity}")
        self.quantity = quantity


class InvalidCursor(MobileError):
    """A cursor this API did not give, or one orders no longer understands."""

    def __init__(self) -> None:
        super().__init__("not a cursor this listing gave; start again without one")


class TokenRefused(MobileError):
    """A service refused the customer's token this API had accepted (revoked meanwhile)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(f"{upstream} refused the access token: sign in again")
        self.upstream = upstream
