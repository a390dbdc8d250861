"""``python -m notifications``: serve notifications with settings from NOTIFICATIONS_* variables."""

from __future__ import annotations

import chassis
from notifications.app import create_app
from notifications.settings import NotificationsSettings


def main() -> None:
    """Serve notifications until SIGTERM or SIGINT."""
    chassis.run(create_app, NotificationsSettings())


if __name__ == "__main__":
    main()
