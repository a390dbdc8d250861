"""Signing keys: make sure there is a signer and a next key, rotate them, publish them."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from identity.domain.model import KeyState, SigningKey, rotate

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    from identity.service_layer.ports import Signer, UnitOfWork


async def ensure_keys(uow: UnitOfWork, signer: Signer, now: datetime) -> None:
    """Start with a signing key and a published next key, unless they exist already."""
    async with uow:
        keys = await uow.signing_keys.all()
        states = {key.state for key in keys}
        if KeyState.ACTIVE not in states:
            # Nobody can hold a token before the first key exists, so it may sign at once.
            first = signer.generate(_new_kid(), now)
            first.state = KeyState.ACTIVE
            await uow.signing_keys.add(first)
        if KeyState.NEXT not in states:
            following = signer.generate(_new_kid(), now)
            following.state = KeyState.NEXT
            await uow.signing_keys.add(following)
        await uow.commit()


async def rotate_keys(uow: UnitOfWork, signer: Signer, now: datetime) -> list[SigningKey]:
    """Promote the next key to signer, retire the signer, publish a new next key."""
    async with uow:
        keys = await uow.signing_keys.all()
        fresh = signer.generate(_new_kid(), now)
        old = list(keys)
        rotate(keys, fresh, now)
        for key in old:
            await uow.signing_keys.save(key)
        await uow.signing_keys.add(fresh)
        await uow.commit()
    return keys


async def published_keys(
    uow: UnitOfWork, signer: Signer, now: datetime, retired_keys_kept: timedelta
) -> list[dict[str, Any]]:
    """The public JWKs validators need: next, active, and retired ones with live tokens."""
    async with uow:
        keys = await uow.signing_keys.all()
    return [signer.public_jwk(key) for key in keys if key.published(now, retired_keys_kept)]


def _new_kid() -> str:
    return uuid.uuid4().hex
