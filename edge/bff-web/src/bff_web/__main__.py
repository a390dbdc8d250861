"""``python -m bff_web``: serve the storefront with settings from BFF_WEB_* variables."""

from __future__ import annotations

import chassis
from bff_web.app import create_app
from bff_web.settings import BffWebSettings


def main() -> None:
    """Serve the storefront until SIGTERM or SIGINT."""
    chassis.run(create_app, BffWebSettings())


if __name__ == "__main__":
    main()
