"""The OAuth 2 authorization server: clients, codes with PKCE, tokens, refresh and revocation."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from identity.domain.errors import (
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    UnauthorizedClient,
    UnknownRedirect,
    UnsupportedResponseType,
)
from identity.domain.model import (
    AuthorizationCode,
    Client,
    Grant,
    RefreshToken,
    Scope,
    active_key,
    fingerprint,
    format_scope,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from identity.service_layer.ports import Passwords, Signer, UnitOfWork, UnitOfWorkFactory

# RFC 7636 §4.2: a challenge is the base64url SHA-256 of a verifier, 43 characters.
_CODE_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


@dataclass(frozen=True)
class TokenPolicy:
    """What tokens say and how long each kind lives."""

    issuer: str
    audience: str
    access_token_ttl: timedelta
    refresh_token_ttl: timedelta
    code_ttl: timedelta


@dataclass(frozen=True)
class Tokens:
    """What the token endpoint answers (RFC 6749 §5.1)."""

    access_token: str
    expires_in: int
    scope: Scope
    refresh_token: str | None = None


@dataclass(frozen=True)
class AuthorizationRequest:
    """The parameters of a valid authorize request, once the client and redirect are known."""

    client: Client
    redirect_uri: str
    scope: Scope
    code_challenge: str
    state: str | None


def utc_now() -> datetime:
    """The time now, in UTC: the clock unless a test gives another."""
    return datetime.now(UTC)


class AuthorizationServer:
    """Issues, refreshes and revokes tokens for registered clients."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        passwords: Passwords,
        signer: Signer,
        policy: TokenPolicy,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._uow = uow
        self._passwords = passwords
        self._signer = signer
        self.policy = policy
        self._clock = clock

    async def authenticate_client(self, client_id: str, secret: str | None) -> Client:
        """The client, once its secret checks (confidential) or if it has none (public)."""
        async with self._uow() as uow:
            client = await uow.clients.get(client_id)
        if secret is None:
            if client is None or client.confidential:
                raise InvalidClient("client authentication failed")
            return client
        # A dummy verification for unknown clients keeps their ids from showing in timings.
        matches = await self._passwords.verify(client.secret_hash if client else None, secret)
        if client is None or not matches:
            raise InvalidClient("client authentication failed")
        return client

    async def authorization_request(
        self,
        *,
        client_id: str | None,
        redirect_uri: str | None,
        response_type: str | None,
        scope: Scope | None,
        code_challenge: str | None,
        code_challenge_method: str | None,
        state: str | None,
    ) -> AuthorizationRequest:
        """Check an authorize request; UnknownRedirect if the user cannot be sent back."""
        async with self._uow() as uow:
            client = await uow.clients.get(client_id) if client_id else None
        if client is None:
            raise UnknownRedirect("unknown client")
        if redirect_uri is None or not client.registered(redirect_uri):
            raise UnknownRedirect("redirect_uri is not one the client registered")
        # From here on errors go back to the client, at its redirect URI (RFC 6749 §4.1.2.1).
        if response_type != "code":
            raise UnsupportedResponseType("only response_type=code is supported")
        if code_challenge_method != "S256" or not _CODE_CHALLENGE.match(code_challenge or ""):
            raise InvalidRequest("PKCE is required: a code_challenge with method S256")
        return AuthorizationRequest(
            client, redirect_uri, client.grant_scope(scope), code_challenge or "", state
        )

    async def issue_code(self, request: AuthorizationRequest, subject: str) -> str:
        """A code for the signed-in user's consent to ``request``, good for one exchange."""
        now = self._clock()
        code = secrets.token_urlsafe(32)
        grant = Grant(
            id=str(uuid.uuid4()),
            client_id=request.client.client_id,
            subject=subject,
            scope=request.scope,
            created_at=now,
        )
        async with self._uow() as uow:
            await uow.grants.add(grant)
            await uow.codes.add(
                AuthorizationCode(
                    code_hash=fingerprint(code),
                    grant_id=grant.id,
                    client_id=grant.client_id,
                    redirect_uri=request.redirect_uri,
                    code_challenge=request.code_challenge,
                    expires_at=now + self.policy.code_ttl,
                )
            )
            await uow.commit()
        return code

    async def client_credentials(self, client: Client, scope: Scope | None) -> Tokens:
        """An access token for a confidential client acting on its own behalf."""
        if not client.confidential:
            raise UnauthorizedClient("a public client cannot use client_credentials")
        granted = client.grant_scope(scope)
        async with self._uow() as uow:
            return await self._tokens(uow, client.client_id, client.client_id, granted, None)

    async def exchange_code(
        self, client: Client, code: str, redirect_uri: str | None, code_verifier: str | None
    ) -> Tokens:
        """Tokens for an authorization code; a reused code revokes what it was exchanged for."""
        now = self._clock()
        code_hash = fingerprint(code)
        async with self._uow() as uow:
            issued = await uow.codes.get(code_hash)
            if issued is None:
                raise InvalidGrant("unknown authorization code")
            if issued.used_at is not None or not await uow.codes.claim(code_hash, now):
                # Only the client the code was issued to may set off the revocation: anyone
                # else holding a leaked, used code could otherwise end the user's grant.
                if issued.client_id == client.client_id:
                    await self._revoke_grant(uow, issued.grant_id, now)
                    await uow.commit()
                raise InvalidGrant("the authorization code was already used")
            issued.check_redeemable(client.client_id, redirect_uri, now)
            issued.check_verifier(code_verifier)
            grant = await uow.grants.get(issued.grant_id)
            if grant is None or grant.revoked:
                raise InvalidGrant("the authorization was revoked")
            tokens = await self._tokens(uow, client.client_id, grant.subject, grant.scope, grant)
            await uow.commit()
        return tokens

    async def refresh(self, client: Client, refresh_token: str, scope: Scope | None) -> Tokens:
        """New tokens for a refresh token, which is used up; reusing one revokes its family."""
        now = self._clock()
        token_hash = fingerprint(refresh_token)
        async with self._uow() as uow:
            token = await uow.refresh_tokens.get(token_hash)
            grant = await uow.grants.get(token.grant_id) if token else None
            if token is None or grant is None or grant.client_id != client.client_id:
                raise InvalidGrant("unknown refresh token")
            if grant.revoked:
                raise InvalidGrant("the refresh token was revoked")
            if token.used or not await uow.refresh_tokens.claim(token_hash, now):
                # Someone holds a copy of a rotated token: the family cannot be trusted.
                await self._revoke_grant(uow, grant.id, now)
                await uow.commit()
                raise InvalidGrant("the refresh token was already used; its family is revoked")
            if now >= token.expires_at:
                raise InvalidGrant("the refresh token has expired")
            narrowed = grant.scope if scope is None else scope
            if not narrowed <= grant.scope:
                raise InvalidScope("a refresh cannot widen the scope granted")
            tokens = await self._tokens(uow, client.client_id, grant.subject, narrowed, grant)
            await uow.commit()
        return tokens

    async def revoke(self, client: Client, token: str) -> None:
        """Revoke a refresh token's family (RFC 7009); tokens unknown or not the client's
        change nothing. The family's access tokens are refused once validators have read
        the revocation list again (see ``revoked_grants``), seconds later."""
        now = self._clock()
        async with self._uow() as uow:
            found = await uow.refresh_tokens.get(fingerprint(token))
            grant_id = found.grant_id if found else await self._grant_of_access_token(uow, token)
            grant = await uow.grants.get(grant_id) if grant_id else None
            if grant is not None and grant.client_id == client.client_id:
                grant.revoke(now)
                await uow.grants.save(grant)
                await uow.commit()

    async def _grant_of_access_token(self, uow: UnitOfWork, token: str) -> str | None:
        # RFC 7009 §2.1: an access token may be revoked too; it names its grant in ``sid``.
        claims = self._signer.signed_claims(token, await uow.signing_keys.all())
        grant_id = claims.get("sid") if claims else None
        return grant_id if isinstance(grant_id, str) else None

    async def revoked_grants(self, window: timedelta) -> list[str]:
        """The grants revoked within ``window``: long enough for every access token issued
        from them before the revocation to have expired, so validators must refuse them."""
        async with self._uow() as uow:
            return await uow.grants.revoked_since(self._clock() - window)

    async def _revoke_grant(self, uow: UnitOfWork, grant_id: str, now: datetime) -> None:
        grant = await uow.grants.get(grant_id)
        if grant is not None:
            grant.revoke(now)
            await uow.grants.save(grant)

    async def _tokens(
        self, uow: UnitOfWork, client_id: str, subject: str, scope: Scope, grant: Grant | None
    ) -> Tokens:
        """An access token, and a refresh token of ``grant``'s family added to ``uow``."""
        now = self._clock()
        policy = self.policy
        claims: dict[str, Any] = {
            "iss": policy.issuer,
            "sub": subject,
            "aud": policy.audience,
            "client_id": client_id,
            "scope": format_scope(scope),
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + policy.access_token_ttl).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        if grant is not None:
            # The family the token belongs to: validators refuse it once the grant is revoked.
            claims["sid"] = grant.id
        access_token = self._signer.sign(claims, active_key(await uow.signing_keys.all()))
        refresh_token = None
        if grant is not None:
            refresh_token = secrets.token_urlsafe(32)
            await uow.refresh_tokens.add(
                RefreshToken(
                    token_hash=fingerprint(refresh_token),
                    grant_id=grant.id,
                    expires_at=now + policy.refresh_token_ttl,
                )
            )
        return Tokens(
            access_token=access_token,
            expires_in=int(policy.access_token_ttl.total_seconds()),
            scope=scope,
            refresh_token=refresh_token,
        )
