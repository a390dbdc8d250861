"""``python -m order_history``: serve order-history with settings from ORDER_HISTORY_* variables."""

from __future__ import annotations

import chassis
from order_history.app import create_app
from order_history.settings import OrderHistorySettings


def main() -> None:
    """Serve order-history until SIGTERM or SIGINT."""
    chassis.run(create_app, OrderHistorySettings())


if __name__ == "__main__":
    main()
