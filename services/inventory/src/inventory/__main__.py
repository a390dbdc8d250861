"""``python -m inventory``: serve the inventory with settings from INVENTORY_* variables."""

from __future__ import annotations

import chassis
from inventory.app import create_app
from inventory.settings import InventorySettings


def main() -> None:
    """Serve the inventory (HTTP and gRPC) until SIGTERM or SIGINT."""
    chassis.run(create_app, InventorySettings())


if __name__ == "__main__":
    main()
