"""What the routes get from the composition root, as ``Annotated`` dependencies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request

from identity.service_layer.oauth import AuthorizationServer
from identity.service_layer.ports import Passwords, Signer, UnitOfWorkFactory
from identity.service_layer.throttle import SignInThrottle
from identity.settings import IdentitySettings


@dataclass(frozen=True)
class Identity:
    """Identity's parts, wired once by ``create_app`` and kept on ``app.state.identity``."""

    settings: IdentitySettings
    uow: UnitOfWorkFactory
    passwords: Passwords
    signer: Signer
    server: AuthorizationServer
    clock: Callable[[], datetime]
    throttle: SignInThrottle

    @property
    def retired_keys_kept(self) -> timedelta:
        """How long a retired key stays published: its last token's life, and some leeway."""
        seconds = self.settings.access_token_ttl_seconds + self.settings.jwks_leeway_seconds
        return timedelta(seconds=seconds)


def identity(request: Request) -> Identity:
    """The parts ``create_app`` put on ``app.state``."""
    parts: Identity = request.app.state.identity
    return parts


IdentityDep = Annotated[Identity, Depends(identity)]
