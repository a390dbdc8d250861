"""Register the clients the configuration names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from identity.domain.model import Client, Scope

if TYPE_CHECKING:
    from collections.abc import Sequence

    from identity.service_layer.ports import Passwords, UnitOfWork


@dataclass(frozen=True)
class Registration:
    """A client as configured: with its secret in clear, which only its hash outlives."""

    client_id: str
    name: str
    secret: str | None
    scopes: Scope
    redirect_uris: tuple[str, ...] = ()


async def register_clients(
    uow: UnitOfWork, passwords: Passwords, registrations: Sequence[Registration]
) -> None:
    """Register or update each client; a secret is hashed again only when it changed."""
    async with uow:
        for registration in registrations:
            known = await uow.clients.get(registration.client_id)
            secret_hash = None
            if registration.secret is not None:
                secret_hash = known.secret_hash if known else None
                if not await passwords.verify(secret_hash, registration.secret):
                    secret_hash = await passwords.hash(registration.secret)
            await uow.clients.put(
                Client(
                    client_id=registration.client_id,
                    name=registration.name,
                    secret_hash=secret_hash,
                    scopes=registration.scopes,
                    redirect_uris=registration.redirect_uris,
                )
            )
        await uow.commit()
