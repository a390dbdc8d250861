"""Cross-site request forgery: every state-changing request proves it came from our own page.

Each form carries the session's synchronizer token; a POST without it, or with another, is
refused with 403. The Origin header, when the browser sends a real one, must be the
shop's own, and a request the browser marks ``Sec-Fetch-Site: cross-site`` is refused
too. (Under ``Referrer-Policy: no-referrer``, which the gateway sets, browsers send
``Origin: null`` on forms: then the token alone decides.) SameSite=Lax on the cookie is a
third line, not the only one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from fastapi import Request
    from starlette.datastructures import FormData

    from bff_web.domain.session import Session

FIELD = "csrf_token"


class CsrfRejected(Exception):  # noqa: N818 - a refusal, answered as a 403 page
    """The request did not prove it came from one of the shop's own pages."""


def token_for(session_id: str, key: bytes) -> str:
    """The CSRF token of a session nothing is stored for yet: a MAC of its id.

    Only the shop's replicas hold the key, so a page's token checks on any of them without
    a stored row, and nobody can make the token of an id without it.
    """
    mac = hmac.new(key, session_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


async def checked_form(request: Request, session: Session, public_url: str) -> FormData:
    """The POSTed form, once its origin and CSRF token are checked; raises CsrfRejected."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null" and _origin(origin) != _origin(public_url):
        raise CsrfRejected("the request comes from another site")
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise CsrfRejected("the request comes from another site")
    form = await request.form()
    token = form.get(FIELD)
    if not isinstance(token, str) or not hmac.compare_digest(
        token.encode(), session.csrf_token.encode()
    ):
        raise CsrfRejected("the form's security token is missing or stale; reload the page")
    return form
