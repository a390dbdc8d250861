"""What the routes are handed: the storefront's ports and settings, and the templates."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from starlette.templating import Jinja2Templates

from bff_web.domain.session import Session
from bff_web.entrypoints.csrf import token_for
from bff_web.service_layer.accounts import OAuthClient, RefreshLocks
from bff_web.service_layer.orders import Customer

if TYPE_CHECKING:
    from collections.abc import Callable

    from bff_web.service_layer.ports import Catalog, Identity, Orders, SessionStore, Stock
    from bff_web.settings import BffWebSettings

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


@dataclass(frozen=True, slots=True)
class Shop:
    """The ports the composition root wired, and the settings the routes read."""

    settings: BffWebSettings
    catalog: Catalog
    stock: Stock
    orders: Orders
    identity: Identity
    sessions: SessionStore
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    refreshes: RefreshLocks = field(default_factory=RefreshLocks)

    @property
    def session_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.session_ttl_seconds)

    @property
    def oauth_client(self) -> OAuthClient:
        public = self.settings.public_url
        return OAuthClient(
            client_id=self.settings.client_id,
            authorize_url=f"{public}/oauth/authorize",
            redirect_uri=self.settings.redirect_uri,
        )

    def blank_session(self, session_id: str) -> Session:
        """A session with nothing in it yet, which is not stored until it holds something.

        Its CSRF token is derived from its id with a key of the shop's own (from its client
        secret), so the forms of a page a visitor merely looked at check without a row.
        """
        secret = self.settings.client_secret.get_secret_value().encode()
        key = hmac.new(secret, b"bff-web csrf tokens", hashlib.sha256).digest()
        return Session(
            id=session_id,
            csrf_token=token_for(session_id, key),
            expires_at=self.clock() + self.session_ttl,
        )

    def new_anonymous_id(self) -> str:
        """A new session id the shop can later recognise as its own: a nonce and its tag."""
        nonce = secrets.token_urlsafe(_NONCE_BYTES)
        return nonce + self._tag(nonce)

    def issued_here(self, session_id: str) -> bool:
        """Whether the shop made this id: a browser's made-up one is never adopted, so no
        one can plant a known id in another's browser and read the cart filled under it."""
        nonce, tag = session_id[:_NONCE_LENGTH], session_id[_NONCE_LENGTH:]
        return len(nonce) == _NONCE_LENGTH and hmac.compare_digest(tag, self._tag(nonce))

    def _tag(self, nonce: str) -> str:
        secret = self.settings.client_secret.get_secret_value().encode()
        key = hmac.new(secret, b"bff-web anonymous sessions", hashlib.sha256).digest()
        digest = hmac.new(key, nonce.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode()[:_TAG_LENGTH]

    def customer(self, session: Session) -> Customer:
        """The session's customer, to call orders as them."""
        return Customer(
            session=session,
            identity=self.identity,
            store=self.sessions,
            refreshes=self.refreshes,
            now=self.clock(),
            refresh_margin=timedelta(seconds=self.settings.token_refresh_margin_seconds),
        )


# An anonymous session id: 16 random bytes (22 characters) and a 126-bit tag (21): 43
# URL-safe characters, the shape of every session id.
_NONCE_BYTES = 16
_NONCE_LENGTH = 22
_TAG_LENGTH = 21


def shop(request: Request) -> Shop:
    """The Shop the composition root put on ``app.state`` at start-up."""
    wired: Shop = request.app.state.shop
    return wired


ShopDep = Annotated[Shop, Depends(shop)]
