"""Repositories over identity's tables, implementing the service layer's ports."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc, insert, select, update

from identity.adapters.orm import (
    authorization_codes,
    clients,
    grants,
    refresh_tokens,
    signing_keys,
    users,
)
from identity.domain.errors import EmailTaken
from identity.domain.model import (
    AuthorizationCode,
    Client,
    Grant,
    KeyState,
    RefreshToken,
    SigningKey,
    User,
    format_scope,
    parse_scope,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


class SqlAlchemyUsers:
    """Accounts in the ``users`` table."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, user: User) -> None:
        try:
            # A savepoint, so that a taken address leaves the transaction usable.
            async with self._session.begin_nested():
                await self._session.execute(
                    insert(users).values(
                        id=user.id,
                        email=user.email,
                        password_hash=user.password_hash,
                        created_at=user.created_at,
                    )
                )
        except exc.IntegrityError as error:
            raise EmailTaken from error

    async def by_email(self, email: str) -> User | None:
        row = (await self._session.execute(select(users).where(users.c.email == email))).first()
        if row is None:
            return None
        return User(
            id=row.id,
            email=row.email,
            password_hash=row.password_hash,
            created_at=row.created_at,
        )


class SqlAlchemyClients:
    """Registered clients in the ``clients`` table."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, client_id: str) -> Client | None:
        query = select(clients).where(clients.c.client_id == client_id)
        row = (await self._session.execute(query)).first()
        if row is None:
            return None
        return Client(
            client_id=row.client_id,
            name=row.name,
            secret_hash=row.secret_hash,
            scopes=frozenset(row.scopes),
            redirect_uris=tuple(row.redirect_uris),
        )

    async def put(self, client: Client) -> None:
        values = {
            "name": client.name,
            "secret_hash": client.secret_hash,
            "scopes": sorted(client.scopes),
            "redirect_uris": list(client.redirect_uris),
        }
        changed = await self._session.execute(
            update(clients).where(clients.c.client_id == client.client_id).values(**values)
        )
        if changed.rowcount == 0:  # type: ignore[attr-defined]
            await self._session.execute(
                insert(clients).values(client_id=client.client_id, **values)
            )


class SqlAlchemySigningKeys:
    """Signing keys, private halves included, in the ``signing_keys`` table."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def all(self) -> list[SigningKey]:
        query = select(signing_keys).order_by(signing_keys.c.created_at, signing_keys.c.kid)
        return [
            SigningKey(
                kid=row.kid,
                alg=row.alg,
                private_jwk=dict(row.private_jwk),
                state=KeyState(row.state),
                created_at=row.created_at,
                retired_at=row.retired_at,
            )
            for row in await self._session.execute(query)
        ]

    async def add(self, key: SigningKey) -> None:
        await self._session.execute(
            insert(signing_keys).values(
                kid=key.kid,
                alg=key.alg,
                private_jwk=key.private_jwk,
                state=key.state.value,
                created_at=key.created_at,
                retired_at=key.retired_at,
            )
        )

    async def save(self, key: SigningKey) -> None:
        await self._session.execute(
            update(signing_keys)
            .where(signing_keys.c.kid == key.kid)
            .values(state=key.state.value, retired_at=key.retired_at)
        )


class SqlAlchemyGrants:
    """Grants, each the family of the tokens issued from it, in the ``grants`` table."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, grant: Grant) -> None:
        await self._session.execute(
            insert(grants).values(
                id=grant.id,
                client_id=grant.client_id,
                subject=grant.subject,
                scope=format_scope(grant.scope),
                created_at=grant.created_at,
                revoked_at=grant.revoked_at,
            )
        )

    async def get(self, grant_id: str) -> Grant | None:
        row = (await self._session.execute(select(grants).where(grants.c.id == grant_id))).first()
        if row is None:
            return None
        return Grant(
            id=row.id,
            client_id=row.client_id,
            subject=row.subject,
            scope=parse_scope(row.scope) or frozenset(),
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )

    async def save(self, grant: Grant) -> None:
        await self._session.execute(
            update(grants).where(grants.c.id == grant.id).values(revoked_at=grant.revoked_at)
        )

    async def revoked_since(self, moment: datetime) -> list[str]:
        query = select(grants.c.id).where(grants.c.revoked_at >= moment).order_by(grants.c.id)
        return list((await self._session.execute(query)).scalars())


class SqlAlchemyAuthorizationCodes:
    """Authorization codes, by fingerprint, in the ``authorization_codes`` table."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, code: AuthorizationCode) -> None:
        await self._session.execute(
            insert(authorization_codes).values(
                code_hash=code.code_hash,
                grant_id=code.grant_id,
                client_id=code.client_id,
                redirect_uri=code.redirect_uri,
                code_challenge=code.code_challenge,
                expires_at=code.expires_at,
                used_at=code.used_at,
            )
        )

    async def get(self, code_hash: str) -> AuthorizationCode | None:
        query = select(authorization_codes).where(authorization_codes.c.code_hash == code_hash)
        row = (await self._session.execute(query)).first()
        if row is None:
            return None
        return AuthorizationCode(
            code_hash=row.code_hash,
            grant_id=row.grant_id,
            client_id=row.client_id,
            redirect_uri=row.redirect_uri,
            code_challenge=row.code_challenge,
            expires_at=row.expires_at,
            used_at=row.used_at,
        )

    async def claim(self, code_hash: str, now: datetime) -> bool:
        table = authorization_codes
        return await _claim(self._session, table, table.c.code_hash == code_hash, now)


class SqlAlchemyRefreshTokens:
    """Refresh tokens, by fingerprint, in the ``refresh_tokens`` table."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, token: RefreshToken) -> None:
        await self._session.execute(
            insert(refresh_tokens).values(
                token_hash=token.token_hash,
                grant_id=token.grant_id,
                expires_at=token.expires_at,
                used_at=token.used_at,
            )
        )

    async def get(self, token_hash: str) -> RefreshToken | None:
        query = select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
        row = (await self._session.execute(query)).first()
        if row is None:
            return None
        return RefreshToken(
            token_hash=row.token_hash,
            grant_id=row.grant_id,
            expires_at=row.expires_at,
            used_at=row.used_at,
        )

    async def claim(self, token_hash: str, now: datetime) -> bool:
        table = refresh_tokens
        return await _claim(self._session, table, table.c.token_hash == token_hash, now)


async def _claim(session: AsyncSession, table: Any, which: Any, now: datetime) -> bool:
    # A conditional update: of two requests racing with one token, only one changes the row.
    result = await session.execute(
        update(table).where(which, table.c.used_at.is_(None)).values(used_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
