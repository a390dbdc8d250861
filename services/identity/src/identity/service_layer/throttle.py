"""Slow down password guessing against one account: a few failed sign-ins, then a pause.

The gateway's per-IP rate limit stops one address from guessing fast; this stops many
addresses from guessing one account's password. Failures are counted per normalised email
address in a sliding window, in this process's memory: identity runs one instance, and a
restart forgetting the count costs an attacker nothing they could not get by waiting.
The price is that anyone can lock an account's sign-in for one window by failing on
purpose; the window is short for that reason.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from identity.domain.errors import InvalidEmail
from identity.domain.model import normalise_email

if TYPE_CHECKING:
    from collections.abc import Callable


class TooManySignInAttempts(Exception):  # noqa: N818 - a state of the account, like the others
    """This account had too many failed sign-ins lately; ``retry_after`` is in seconds."""

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(
            f"too many failed sign-ins for this account: try again in {minutes} minute(s)"
        )
        self.retry_after = retry_after


class SignInThrottle:
    """At most ``max_failures`` failed sign-ins per account within ``window``."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        max_failures: int = 5,
        window: timedelta = timedelta(minutes=15),
        max_accounts: int = 10_000,
    ) -> None:
        self._clock = clock
        self._max_failures = max_failures
        self._window = window
        self._max_accounts = max_accounts
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()

    def check(self, email: str) -> None:
        """Raise TooManySignInAttempts if this account may not try to sign in just now."""
        failures = self._recent(_key(email))
        if len(failures) >= self._max_failures:
            wait = failures[0] + self._window - self._clock()
            raise TooManySignInAttempts(max(1, math.ceil(wait.total_seconds())))

    def failed(self, email: str) -> None:
        """Count a failed sign-in of this account."""
        key = _key(email)
        failures = self._recent(key)
        failures.append(self._clock())
        self._failures[key] = failures
        self._failures.move_to_end(key)
        while len(self._failures) > self._max_accounts:
            self._failures.popitem(last=False)

    def succeeded(self, email: str) -> None:
        """The account signed in: its failures are forgiven."""
        self._failures.pop(_key(email), None)

    def _recent(self, key: str) -> deque[datetime]:
        failures = self._failures.get(key, deque())
        horizon = self._clock() - self._window
        while failures and failures[0] <= horizon:
            failures.popleft()
        return failures


def _key(email: str) -> str:
    try:
        return normalise_email(email)
    except InvalidEmail:
        return email.strip().lower()
