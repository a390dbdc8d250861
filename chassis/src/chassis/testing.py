"""What the tests of a Souk service need from the chassis: a token validator to inject.

``app.state.token_validator = ReadableTokens()`` before the app starts, then send
``readable_bearer("c-1", "orders:read")`` as the request's headers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chassis.auth import AccessToken, InvalidTokenError, Rejection


class ReadableTokens:
    """An AccessTokenValidator that reads ``<subject>;<scope>,<scope>`` as a valid token.

    Anything else is refused as a bad signature. The client id is the subject's unless given.
    """

    def __init__(self, client_id: str | None = None) -> None:
        self._client_id = client_id

    async def validate(self, token: str) -> AccessToken:
        """The access token ``token`` spells out; InvalidTokenError if it spells none."""
        subject, separator, scopes = token.partition(";")
        if not separator or not subject:
            raise InvalidTokenError(Rejection.BAD_SIGNATURE)
        return AccessToken(
            subject=subject,
            client_id=self._client_id or subject,
            scopes=frozenset(scopes.split(",")) - {""},
            token_id=f"jti-{subject}",
            expires_at=datetime.now(UTC) + timedelta(minutes=5),
        )


def readable_bearer(subject: str, *scopes: str) -> dict[str, str]:
    """The Authorization header of a token :class:`ReadableTokens` reads as ``subject``'s."""
    return {"Authorization": f"Bearer {subject};{','.join(scopes)}"}
