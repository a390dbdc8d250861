"""``python -m bff_mobile``: serve bff-mobile with settings from BFF_MOBILE_* variables."""

from __future__ import annotations

import chassis
from bff_mobile.app import create_app
from bff_mobile.settings import BffMobileSettings


def main() -> None:
    """Serve bff-mobile until SIGTERM or SIGINT."""
    chassis.run(create_app, BffMobileSettings())


if __name__ == "__main__":
    main()
