"""``python -m catalog``: serve the catalog with settings from CATALOG_* variables."""

from __future__ import annotations

import chassis
from catalog.app import create_app
from catalog.settings import CatalogSettings


def main() -> None:
    """Serve the catalog until SIGTERM or SIGINT."""
    chassis.run(create_app, CatalogSettings())


if __name__ == "__main__":
    main()
