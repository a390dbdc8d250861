"""Register an account and check a password."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from identity.domain.errors import InvalidEmail, WrongCredentials
from identity.domain.model import User, check_password_strength, normalise_email

if TYPE_CHECKING:
    from datetime import datetime

    from identity.service_layer.ports import Passwords, UnitOfWork


async def register(
    uow: UnitOfWork, passwords: Passwords, email: str, password: str, now: datetime
) -> User:
    """Open an account; raise InvalidEmail, WeakPassword or EmailTaken."""
    address = normalise_email(email)
    check_password_strength(password, address)
    user = User(
        id=str(uuid.uuid4()),
        email=address,
        password_hash=await passwords.hash(password),
        created_at=now,
    )
    async with uow:
        await uow.users.add(user)
        await uow.commit()
    return user


async def authenticate(uow: UnitOfWork, passwords: Passwords, email: str, password: str) -> User:
    """The account with this email address and password; raise WrongCredentials otherwise."""
    try:
        address = normalise_email(email)
    except InvalidEmail:
        address = ""
    async with uow:
        user = await uow.users.by_email(address) if address else None
    # Verifying even when nobody has the address keeps a missing account as slow as a wrong
    # password, so timing does not tell which addresses have accounts.
    matches = await passwords.verify(user.password_hash if user else None, password)
    if user is None or not matches:
        raise WrongCredentials
    return user
