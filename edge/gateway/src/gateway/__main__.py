"""``python -m gateway``: serve the gateway with settings from GATEWAY_* variables."""

from __future__ import annotations

import chassis
from gateway.app import create_app
from gateway.settings import GatewaySettings


def main() -> None:
    chassis.run(create_app, GatewaySettings())


if __name__ == "__main__":
    main()
