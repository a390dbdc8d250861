"""What can go wrong with orders, in the shop's words."""

from __future__ import annotations


class OrdersError(Exception):
    """An order rule was broken or an order could not be found."""


class OrderNotFound(OrdersError):
    """No order has this id."""

    def __init__(self, order_id: str) -> None:
        super().__init__(f"no order with id {order_id!r}")
        self.order_id = order_id


class InvalidOrder(OrdersError):
    """An order as placed breaks one of the shop's rules."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class OrderNotCancellable(OrdersError):
    """The order is in a state a customer cannot cancel from."""

    def __init__(self, order_id: str, status: str) -> None:
        super().__init__(f"order {order_id!r} is {status} and cannot be cancelled")
        self.order_id = order_id
        self.status = status


class StaleOrder(OrdersError):
    """The order changed since it was loaded (optimistic concurrency)."""

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id!r} was changed by someone else")
        self.order_id = order_id


class IdempotencyKeyReused(OrdersError):
    """An Idempotency-Key already placed an order from a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used for a different request; "
            "use a new key for a new order"
        )
        self.key = key


class IdempotencyKeyTaken(OrdersError):
    """Another request stored this Idempotency-Key first (a race between duplicates)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} is already stored")
        self.key = key


class OrderMovedOn(OrdersError):
    """A change no longer applies: the order moved on since the change was decided."""

    def __init__(self, order_id: str, why: str) -> None:
        super().__init__(f"order {order_id!r}: {why}")
        self.order_id = order_id


class CheckoutRefused(OrdersError):
    """Another service refused a checkout step for good: the order cannot be fulfilled."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownProduct(CheckoutRefused):
    def __init__(self, product_id: str) -> None:
        super().__init__(f"unknown product {product_id}")
        self.product_id = product_id


class OutOfStock(CheckoutRefused):
    def __init__(self, detail: str) -> None:
        super().__init__(f"out of stock: {detail}")


class PaymentDeclined(CheckoutRefused):
    def __init__(self, decline_reason: str) -> None:
        super().__init__(f"payment declined: {decline_reason}")
        self.decline_reason = decline_reason
