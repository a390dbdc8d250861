"""What the tests of a Souk service need from the chassis: a token validator to inject,
and a way to wait for what happens in the background (a consumer, a relay).

``app.state.token_validator = ReadableTokens()`` before the app starts, then send
``readable_bearer("c-1", "orders:read")`` as the request's headers.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from chassis.auth import AccessToken, InvalidTokenError, Rejection

CLIENT_KIND = "client"


class ReadableTokens:
    """An AccessTokenValidator that reads ``<subject>;<scope>,<scope>`` as a valid token.

    Such a token is a customer's (a grant ``grant-<subject>`` that they signed in for);
    ``<subject>;<scopes>;client`` is a client's own (client credentials: no grant). Anything
    else is refused as a bad signature. The client id is the subject's unless given.
    """

    def __init__(self, client_id: str | None = None) -> None:
        self._client_id = client_id

    async def validate(self, token: str) -> AccessToken:
        """The access token ``token`` spells out; InvalidTokenError if it spells none."""
        subject, separator, rest = token.partition(";")
        scopes, _, kind = rest.partition(";")
        if not separator or not subject or kind not in {"", CLIENT_KIND}:
            raise InvalidTokenError(Rejection.BAD_SIGNATURE)
        return AccessToken(
            subject=subject,
            client_id=self._client_id or subject,
            scopes=frozenset(scopes.split(",")) - {""},
            token_id=f"jti-{subject}",
            expires_at=datetime.now(UTC) + timedelta(minutes=5),
            grant_id=None if kind == CLIENT_KIND else f"grant-{subject}",
        )


def readable_bearer(subject: str, *scopes: str) -> dict[str, str]:
    """The Authorization header of a token :class:`ReadableTokens` reads as ``subject``'s."""
    return {"Authorization": f"Bearer {subject};{','.join(scopes)}"}


def readable_client_bearer(client_id: str, *scopes: str) -> dict[str, str]:
    """A client's own token (client credentials) as :class:`ReadableTokens` reads it."""
    return {"Authorization": f"Bearer {client_id};{','.join(scopes)};{CLIENT_KIND}"}


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Wait until ``await check()`` is true, looking every 20 ms; TimeoutError after ``within``."""
    async with asyncio.timeout(within):
        for _ in itertools.count():  # polling: the check has no event to wait on
            if await check():
                return
            await asyncio.sleep(0.02)
