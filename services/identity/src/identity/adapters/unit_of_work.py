"""The SQLAlchemy unit of work: one session, hence one transaction, per ``async with``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chassis import unit_of_work
from identity.adapters.repository import (
    SqlAlchemyAuthorizationCodes,
    SqlAlchemyClients,
    SqlAlchemyGrants,
    SqlAlchemyRefreshTokens,
    SqlAlchemySigningKeys,
    SqlAlchemyUsers,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


class SqlAlchemyUnitOfWork(unit_of_work.SqlAlchemyUnitOfWork):
    """Implements the service layer's UnitOfWork port on an async session."""

    users: SqlAlchemyUsers
    clients: SqlAlchemyClients
    signing_keys: SqlAlchemySigningKeys
    grants: SqlAlchemyGrants
    codes: SqlAlchemyAuthorizationCodes
    refresh_tokens: SqlAlchemyRefreshTokens

    def open_repositories(self, session: AsyncSession) -> None:
        self.users = SqlAlchemyUsers(session)
        self.clients = SqlAlchemyClients(session)
        self.signing_keys = SqlAlchemySigningKeys(session)
        self.grants = SqlAlchemyGrants(session)
        self.codes = SqlAlchemyAuthorizationCodes(session)
        self.refresh_tokens = SqlAlchemyRefreshTokens(session)
