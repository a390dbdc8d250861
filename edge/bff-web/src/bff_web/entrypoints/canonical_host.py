"""One public address: a page asked for under another host name is redirected to it.

Sign-in comes back to ``{public_url}/auth/callback`` and the session cookie belongs to the
host it was set on, so a shop opened as http://127.0.0.1:8080/ while its public address is
http://localhost:8080 would lose the pending sign-in on the way back. The gateway says
which host the browser asked for (X-Forwarded-Host); a GET or HEAD under another is sent,
path and query kept, to the public address first. Requests with no forwarded host (the
platform's own: health checks, replicas, tests) and other methods pass as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import RedirectResponse

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send


class CanonicalHost:
    """ASGI middleware: 308 from any other forwarded host to ``public_url``."""

    def __init__(self, app: ASGIApp, public_url: str) -> None:
        self._app = app
        self._public_url = public_url.rstrip("/")
        self._host = urlsplit(public_url).netloc.lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in {"GET", "HEAD"}:
            forwarded = Headers(scope=scope).get("x-forwarded-host", "").split(",")[0].strip()
            if forwarded and forwarded.lower() != self._host:
                path = scope.get("root_path", "") + scope["path"]
                query = scope.get("query_string", b"").decode("latin-1")
                target = self._public_url + path + (f"?{query}" if query else "")
                await RedirectResponse(target, status_code=308)(scope, receive, send)
                return
        await self._app(scope, receive, send)
