"""The one place where the storefront's errors become pages a shopper can act on.

A browser gets HTML, not problem+json: a 404 page for an unknown product or order, a 403
for a forged form, a 503 that says which part of the shop is away, and a redirect to
sign-in when a page needs a customer (a script asking for JSON gets a 401 problem).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from fastapi.exceptions import RequestValidationError
from starlette.responses import RedirectResponse

from bff_web.domain.errors import OrderNotFound, ProductNotFound, SignInRequired
from bff_web.entrypoints.csrf import CsrfRejected
from bff_web.entrypoints.deps import TEMPLATES
from bff_web.entrypoints.visits import COOKIE_NAME, PAGE_HEADERS
from chassis import get_logger, problem_response
from chassis.problems import validation_error_response
from chassis.upstream import UpstreamFailure

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from starlette.responses import Response

    from bff_web.domain.session import Session
    from bff_web.entrypoints.deps import Shop
    from bff_web.entrypoints.visits import Visit

_log = get_logger("bff_web.errors")

# Where a page that needed sign-in sends the shopper back to: a form's page, not its target.
_RETURN_AFTER_POST = {"/checkout": "/cart"}


async def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    """An error page that keeps the shopper's context: their cart count and account links."""
    session = await _session_of(request)
    context: dict[str, object] = {"title": title, "detail": detail, "status": status}
    if session is not None:
        context.update(
            csrf_token=session.csrf_token,
            cart_count=session.cart.count,
            signed_in=session.signed_in,
        )
    return TEMPLATES.TemplateResponse(
        request, "error.html", context, status_code=status, headers=PAGE_HEADERS
    )


async def _session_of(request: Request) -> Session | None:
    """The browser's session: the visit's if the route got that far, else from its cookie.

    An error page never saves it: it shows it, and a failing store shows none."""
    visit: Visit | None = getattr(request.state, "visit", None)
    if visit is not None:
        return visit.session
    shop: Shop | None = getattr(request.app.state, "shop", None)
    cookie = request.cookies.get(COOKIE_NAME)
    if shop is None or not cookie:
        return None
    try:
        stored = await shop.sessions.load(cookie, shop.clock())
    except Exception:  # noqa: BLE001 - the error page goes on without the session
        _log.warning("session unavailable for an error page", path=request.url.path)
        return None
    return stored


async def _not_found(request: Request, error: Exception) -> Response:
    what = "product" if isinstance(error, ProductNotFound) else "order"
    return await error_page(
        request, 404, f"No such {what}", f"We could not find this {what} in the souk."
    )


# What a page's parameters mean, for an address a shopper (or a stale link) got wrong.
_PARAMETERS = {
    "page": "the page number",
    "category": "the shelf",
    "q": "the search",
    "sort": "the order",
    "min_price": "the lowest price",
    "max_price": "the highest price",
}


async def _bad_parameters(request: Request, error: Exception) -> Response:
    """A browser gets a 400 page saying which part of the address is wrong; an API client
    the problem document the chassis answers everyone else."""
    if "text/html" not in request.headers.get("accept", ""):
        return await validation_error_response(request, error)
    assert isinstance(error, RequestValidationError)  # noqa: S101 - registered for this type only
    names = sorted({str(e["loc"][-1]) for e in error.errors() if e.get("loc")})
    parts = [_PARAMETERS.get(name, name) for name in names] or ["the address"]
    return await error_page(
        request,
        400,
        "That address is not quite right",
        f"We could not make sense of {' and '.join(parts)} in it. "
        "Try the shelves and the search above instead.",
    )


async def _sign_in_required(request: Request, error: Exception) -> Response:
    if _wants_json(request):
        # The order page's polling: a fetch follows redirects, and each poll sent to
        # /auth/sign-in would start a sign-in, replacing the one the shopper has under way.
        return problem_response(
            401, "sign-in-required", "Sign-in required", str(error), headers=PAGE_HEADERS
        )
    path = request.url.path
    if request.method != "GET":
        path = _RETURN_AFTER_POST.get(path, "/")
    elif request.url.query:
        path = f"{path}?{request.url.query}"
    query = urlencode({"return_to": path})
    return RedirectResponse(f"/auth/sign-in?{query}", status_code=303)


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


async def _forged(request: Request, error: Exception) -> Response:
    _log.warning("form refused", path=request.url.path, reason=str(error))
    return await error_page(request, 403, "This form has expired", str(error))


async def _upstream_failed(request: Request, error: Exception) -> Response:
    assert isinstance(error, UpstreamFailure)  # noqa: S101 - registered for this type only
    _log.warning("page unavailable", path=request.url.path, error=str(error))
    response = await error_page(
        request,
        503,
        "This part of the souk is closed for a moment",
        f"The {error.upstream} service is not answering just now. Please try again shortly.",
    )
    response.headers["Retry-After"] = "2"
    return response


async def _no_such_page(request: Request, _: Exception) -> Response:
    # A browser gets a page; an API client that strayed here (the gateway sends every path
    # no other route claims) gets the problem document it expects.
    if "text/html" in request.headers.get("accept", ""):
        return await error_page(request, 404, "No such page", "There is nothing at this address.")
    return problem_response(404, "not-found", "Not Found", instance=request.url.path)


def install_error_pages(app: FastAPI) -> None:
    app.add_exception_handler(404, _no_such_page)
    app.add_exception_handler(RequestValidationError, _bad_parameters)
    app.add_exception_handler(ProductNotFound, _not_found)
    app.add_exception_handler(OrderNotFound, _not_found)
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(CsrfRejected, _forged)
    app.add_exception_handler(UpstreamFailure, _upstream_failed)
