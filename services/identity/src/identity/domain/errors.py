"""What can go wrong in identity, in the words of its users and of RFC 6749."""

from __future__ import annotations

from typing import ClassVar


class IdentityError(Exception):
    """An identity rule refused the request."""


class EmailTaken(IdentityError):
    """Another account already uses this email address."""

    def __init__(self) -> None:
        super().__init__("an account with this email address already exists")


class InvalidEmail(IdentityError):
    """The text given as an email address is not one."""


class WeakPassword(IdentityError):
    """The password is too easy to guess to protect an account."""


class WrongCredentials(IdentityError):
    """No account has this email address and password (which one is wrong is not said)."""

    def __init__(self) -> None:
        super().__init__("the email address or the password is wrong")


class PasswordChecksBusy(IdentityError):
    """Every slot for a password hash is taken and the queue is full: try again shortly."""

    def __init__(self) -> None:
        super().__init__("too many sign-ins and sign-ups at once: try again in a moment")


class UnknownRedirect(IdentityError):
    """The client is unknown or the redirect URI is not one it registered: nowhere safe to
    send the user back to, so the error is shown rather than redirected."""


class OAuthError(IdentityError):
    """An RFC 6749 error: ``error`` is its registered code, the message its description."""

    error: ClassVar[str] = "invalid_request"
    status: ClassVar[int] = 400


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    error = "invalid_client"
    status = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"
