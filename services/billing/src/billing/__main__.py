"""``python -m billing``: serve billing with settings from BILLING_* variables."""

from __future__ import annotations

import chassis
from billing.app import create_app
from billing.settings import BillingSettings


def main() -> None:
    """Serve billing until SIGTERM or SIGINT."""
    chassis.run(create_app, BillingSettings())


if __name__ == "__main__":
    main()
