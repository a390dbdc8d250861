"""A browser's visit: its session from the cookie, and the cookie and page sent back.

The cookie holds only the session id: HttpOnly (no script reads it), SameSite=Lax (other
sites' forms do not send it), Path=/, and Secure when the request came over TLS.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from starlette.responses import RedirectResponse

from bff_web.entrypoints.deps import TEMPLATES, Shop, ShopDep

if TYPE_CHECKING:
    from starlette.responses import Response

    from bff_web.domain.session import Session

COOKIE_NAME = "souk_session"
# What the shop issues (Shop.new_anonymous_id, and new_secret after sign-in): 43 URL-safe chars.
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")
# Pages are the customer's own (their cart, their orders): no shared cache keeps them.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
}


def over_tls(request: Request) -> bool:
    """Whether the browser's connection was TLS, here or at the gateway in front."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
    return request.url.scheme == "https" or forwarded == "https"


class Visit:
    """One request's session; ``respond`` saves it if it changed and sets the cookie if new."""

    def __init__(
        self,
        request: Request,
        shop: Shop,
        session: Session,
        *,
        known: bool,
        cookie_id: str | None = None,
    ) -> None:
        self.request = request
        self.shop = shop
        self.session = session
        self._cookie_id = session.id if known else cookie_id
        self._saved = copy.deepcopy(session) if known else None

    async def respond(self, response: Response) -> Response:
        session = self.session
        if self._worth_saving() and await self._still_current():
            await self.shop.sessions.save(session)
        if session.id != self._cookie_id:
            response.set_cookie(
                COOKIE_NAME,
                session.id,
                max_age=self.shop.settings.session_ttl_seconds,
                path="/",
                httponly=True,
                samesite="lax",
                secure=over_tls(self.request),
            )
        for name, value in PAGE_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def _worth_saving(self) -> bool:
        """Whether the session changed; a new one is stored only once it holds something,
        so visitors who only look (crawlers, scripts without cookies) leave no rows."""
        if self._saved is None:
            return not self.session.is_blank
        return self.session != self._saved

    async def _still_current(self) -> bool:
        """Whether to save this request's session; takes up tokens stored meanwhile.

        Other requests of the browser run at the same time (tabs, the order page's polling).
        If one refreshed the tokens while this one ran, saving the tokens this one loaded
        would bring back a used refresh token, which identity takes for a stolen one; if one
        signed out, saving would sign the browser back in. A session this request rotated
        (``continue_as``) is its own and always saved.
        """
        loaded = self._saved
        if loaded is None or self.session.id != loaded.id or self.session.tokens != loaded.tokens:
            return True
        stored = await self.shop.sessions.load(self.session.id, self.shop.clock())
        if stored is None:
            return False
        self.session.tokens = stored.tokens
        return True

    async def page(self, template: str, status_code: int = 200, **context: Any) -> Response:
        """A rendered page with the header's cart, sign-in state, notices and CSRF token."""
        session = self.session
        response = TEMPLATES.TemplateResponse(
            self.request,
            template,
            {
                "session": session,
                "csrf_token": session.csrf_token,
                "cart_count": session.cart.count,
                "signed_in": session.signed_in,
                "flashes": session.take_flashes(),
                **context,
            },
            status_code=status_code,
        )
        return await self.respond(response)

    async def redirect(self, url: str) -> Response:
        """See Other: after a form, the browser GETs the next page (no resubmission)."""
        return await self.respond(RedirectResponse(url, status_code=303))

    def continue_as(self, session: Session, *, saved: bool) -> None:
        """Go on as ``session``, which has a new id (signed in, or signed out): a new cookie."""
        self.session = session
        self._saved = copy.deepcopy(session) if saved else None


async def visit(request: Request, shop: ShopDep) -> Visit:
    """The visit of the browser's session, or of a new one if it has none (or a stale one)."""
    found = await _visit(request, shop)
    # An error page of this request shows the same session (its cart, its account links).
    request.state.visit = found
    return found


async def _visit(request: Request, shop: Shop) -> Visit:
    cookie = request.cookies.get(COOKIE_NAME)
    session = await shop.sessions.load(cookie, shop.clock()) if cookie else None
    if session is not None:
        return Visit(request, shop, session, known=True)
    if cookie is not None and _SESSION_ID.fullmatch(cookie) and shop.issued_here(cookie):
        # A blank session the shop issued, never stored (or expired): the browser keeps it.
        return Visit(request, shop, shop.blank_session(cookie), known=False, cookie_id=cookie)
    return Visit(request, shop, shop.blank_session(shop.new_anonymous_id()), known=False)


VisitDep = Annotated[Visit, Depends(visit)]
