"""What can go wrong in notifications, in the shop's words."""

from __future__ import annotations


class NotificationsError(Exception):
    """A notification could not be made."""


class CustomerUnknown(NotificationsError):
    """A payment names no customer, and no event of its order has said whose it is (yet)."""

    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"no customer known for order {order_id!r}: the payment names none and no "
            "event of the order has been seen"
        )
        self.order_id = order_id
