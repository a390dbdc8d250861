"""``python -m console``: the console as `souk up` starts it."""

from __future__ import annotations

import chassis
from console.app import create_app
from console.settings import ConsoleSettings


def main() -> None:
    chassis.run(create_app, ConsoleSettings.for_service("console"))


if __name__ == "__main__":
    main()
