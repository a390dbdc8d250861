"""``python -m orders``: serve orders with settings from ORDERS_* variables."""

from __future__ import annotations

import chassis
from orders.app import create_app
from orders.settings import OrdersSettings


def main() -> None:
    """Serve orders until SIGTERM or SIGINT."""
    chassis.run(create_app, OrdersSettings())


if __name__ == "__main__":
    main()
