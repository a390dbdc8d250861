"""Request and response bodies of identity's JSON endpoints."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from identity.domain.model import (
    EMAIL_MAX_LENGTH,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    PASSWORD_MIN_SCORE,
)


class UserCreate(BaseModel):
    """A new account: the address to sign in with and its password."""

    # No other field is taken (no mass assignment of an id, a role ...).
    model_config = ConfigDict(extra="forbid")

    email: str = Field(
        max_length=EMAIL_MAX_LENGTH,
        description="An address email-validator accepts (no control characters); "
        "taken addresses are a 409.",
        examples=["amina@example.com"],
    )
    password: str = Field(
        max_length=PASSWORD_MAX_LENGTH,
        description=f"{PASSWORD_MIN_LENGTH}-{PASSWORD_MAX_LENGTH} characters that zxcvbn rates "
        f"at least {PASSWORD_MIN_SCORE} of 4 (no common password, keyboard pattern or the "
        "address itself); a weaker one is a 422 `weak-password`.",
        examples=["correct horse battery"],
    )


class UserPublic(BaseModel):
    """An account as shown to anyone: never its password or its hash."""

    id: str
    email: str


class SigningKeysRotated(BaseModel):
    """The keys after a rotation: the one now signing, and the one published to sign next."""

    signing: str
    next: str


class RevokedGrants(BaseModel):
    """Grants (refresh-token families) revoked lately: access tokens whose ``sid`` is one of
    them are refused, although their signature and expiry are good."""

    grants: list[str]
