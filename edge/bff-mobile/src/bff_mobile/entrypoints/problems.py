"""Every error as problem+json with a stable, machine-readable ``code`` the app can switch on.

The chassis's problems carry a ``type`` URI; a phone wants a short code it can match without
parsing URIs, and one that stays the same when the chassis refines a type (``unauthorized``
covers both "no token" and "a refused token"). This module is the one place that gives
every answer its code: the chassis's handlers are wrapped, bff-mobile's own errors mapped.
"""

from __future__ import annotations

import inspect
import json
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import Field
from starlette.responses import JSONResponse, Response

from bff_mobile.domain.errors import (
    CartFull,
    InvalidCursor,
    InvalidQuantity,
    MobileError,
    ProductNotFound,
    TokenRefused,
)
from chassis.problems import PROBLEM_MEDIA_TYPE, Problem, problem_response, public_instance
from chassis.upstream import UpstreamFailure

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from fastapi import FastAPI
    from starlette.requests import Request

    Handler = Callable[[Request, Any], Response | Awaitable[Response]]


class ErrorCode(StrEnum):
    """What went wrong, for the app to act on; the ``title`` and ``detail`` are for people."""

    UNAUTHORIZED = "unauthorized"
    """401: no access token, or one refused (expired, revoked...): sign in again."""
    FORBIDDEN = "forbidden"
    """403: the token lacks a scope the route needs, or no customer signed in for it."""
    NOT_FOUND = "not_found"
    """404: no such route, or no such product."""
    METHOD_NOT_ALLOWED = "method_not_allowed"
    INVALID_CURSOR = "invalid_cursor"
    """400: a cursor this API did not give: list again from the start."""
    BAD_REQUEST = "bad_request"
    VALIDATION = "validation"
    """422: a parameter or body field out of range; ``errors`` names each."""
    CART_FULL = "cart_full"
    """409: the cart has as many different products as it may hold."""
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    """503: a service this answer needs cannot answer now; retry after ``Retry-After``."""
    AUTH_UNAVAILABLE = "auth_unavailable"
    """503: the token cannot be checked now (the issuer's keys are out of reach)."""
    STORAGE_UNAVAILABLE = "storage_unavailable"
    INTERNAL = "internal"


# The chassis's problem types (the slug of ``type``) and the code each stands for.
_CODES = {
    "unauthorized": ErrorCode.UNAUTHORIZED,
    "invalid-token": ErrorCode.UNAUTHORIZED,
    "insufficient-scope": ErrorCode.FORBIDDEN,
    "customer-required": ErrorCode.FORBIDDEN,
    "not-found": ErrorCode.NOT_FOUND,
    "method-not-allowed": ErrorCode.METHOD_NOT_ALLOWED,
    "validation-error": ErrorCode.VALIDATION,
    "token-keys-unavailable": ErrorCode.AUTH_UNAVAILABLE,
    "storage-unavailable": ErrorCode.STORAGE_UNAVAILABLE,
    "internal-error": ErrorCode.INTERNAL,
}


class MobileProblem(Problem):
    """An RFC 9457 problem document with the code the app switches on."""

    code: ErrorCode = Field(examples=[ErrorCode.INVALID_CURSOR])


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting coded problem+json answers with these statuses."""
    # The model registers the schema; the problem+json media type then names it.
    content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/MobileProblem"}}}
    return {status: {"model": MobileProblem, "content": content} for status in statuses}


def install_error_codes(app: FastAPI) -> None:
    """Give every problem the app answers its code: call after ``chassis.create_app``."""
    for key, handler in list(app.exception_handlers.items()):
        app.exception_handlers[key] = _coded(handler)
    app.add_exception_handler(MobileError, _on_mobile_error)
    app.add_exception_handler(UpstreamFailure, _on_upstream_failure)


def code_of(problem_type: str, status: int) -> ErrorCode:
    """The code of a problem of this type URI (or slug) and status."""
    code = _CODES.get(problem_type.rsplit("/", 1)[-1])
    if code is not None:
        return code
    return ErrorCode.INTERNAL if status >= 500 else ErrorCode.BAD_REQUEST


def _coded(handler: Handler) -> Handler:
    async def coded(request: Request, exc: Any) -> Response:
        response = handler(request, exc)
        if inspect.isawaitable(response):
            response = await response
        return _with_code(response)

    return coded


def _with_code(response: Response) -> Response:
    if response.media_type != PROBLEM_MEDIA_TYPE:
        return response
    body = json.loads(bytes(response.body))
    body["code"] = code_of(str(body.get("type", "")), response.status_code)
    headers = {
        name: value
        for name, value in response.headers.items()
        if name not in {"content-length", "content-type"}
    }
    return JSONResponse(
        body, status_code=response.status_code, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


async def _on_mobile_error(request: Request, error: Exception) -> Response:
    # The path the client asked for: behind the gateway /api/mobile/..., not /mobile/...
    path = public_instance(request)
    match error:
        case ProductNotFound():
            return problem_response(
                404,
                "product-not-found",
                "Product not found",
                str(error),
                instance=path,
                code=ErrorCode.NOT_FOUND,
                product_id=error.product_id,
            )
        case InvalidCursor():
            return problem_response(
                400,
                "invalid-cursor",
                "Invalid cursor",
                str(error),
                instance=path,
                code=ErrorCode.INVALID_CURSOR,
            )
        case CartFull():
            return problem_response(
                409, "cart-full", "Cart full", str(error), instance=path, code=ErrorCode.CART_FULL
            )
        case InvalidQuantity():
            return problem_response(
                422,
                "invalid-quantity",
                "Invalid quantity",
                str(error),
                instance=path,
                code=ErrorCode.VALIDATION,
            )
        case TokenRefused():
            return problem_response(
                401,
                "invalid-token",
                "Unauthorized",
                str(error),
                instance=path,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                code=ErrorCode.UNAUTHORIZED,
            )
        case _:
            return problem_response(
                400,
                "mobile-error",
                "Request refused",
                str(error),
                instance=path,
                code=ErrorCode.BAD_REQUEST,
            )


async def _on_upstream_failure(request: Request, error: Exception) -> Response:
    assert isinstance(error, UpstreamFailure)  # noqa: S101 - registered for this type only
    return problem_response(
        503,
        "upstream-unavailable",
        "Service Unavailable",
        f"The {error.upstream} service cannot answer just now; try again shortly.",
        instance=public_instance(request),
        headers={"Retry-After": "1"},
        code=ErrorCode.UPSTREAM_UNAVAILABLE,
        upstream=error.upstream,
    )
