"""``python -m payment_provider``: serve one simulated provider, named by SOUK_SERVICE."""

from __future__ import annotations

import os

import chassis
from payment_provider.app import create_app
from payment_provider.settings import ProviderSettings


def main() -> None:
    """Serve the provider ``SOUK_SERVICE`` names (payment-primary, payment-backup, ...)."""
    service = os.environ.get("SOUK_SERVICE", "payment-provider")
    chassis.run(create_app, ProviderSettings.for_service(service))


if __name__ == "__main__":
    main()
