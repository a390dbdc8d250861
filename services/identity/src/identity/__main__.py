"""``python -m identity``: serve identity with settings from IDENTITY_* variables."""

from __future__ import annotations

import chassis
from identity.app import create_app
from identity.settings import IdentitySettings


def main() -> None:
    """Serve identity until SIGTERM or SIGINT."""
    chassis.run(create_app, IdentitySettings())


if __name__ == "__main__":
    main()
