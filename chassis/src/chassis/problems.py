"""Every error as RFC 9457 problem+json with a stable ``type``."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.routing import Match

from chassis.logs import get_logger
from chassis.requests import public_path, request_id_var
from chassis.storage import StorageUnavailableError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fastapi import FastAPI
    from starlette.requests import Request

PROBLEM_TYPE_BASE = "https://souk.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"
# What a 405's Allow may name (HEAD comes with GET).
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

_log = get_logger("chassis.problems")


class ProblemError(Exception):
    """Raise to answer with a problem document; ``type`` is a slug such as ``not-found``."""

    def __init__(
        self,
        status: int,
        type: str,  # noqa: A002 - the RFC 9457 member name
        title: str,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions


def problem_type_uri(slug: str) -> str:
    return f"{PROBLEM_TYPE_BASE}{slug}"


class Problem(BaseModel):
    """An RFC 9457 problem document, as every error is answered."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[problem_type_uri("validation-error")])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting problem+json answers with these statuses."""
    return {status: {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}} for status in statuses}


def problem_response(
    status: int,
    type: str,  # noqa: A002 - the RFC 9457 member name
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem+json response; the request id is included so users can quote it."""
    body: dict[str, Any] = {"type": problem_type_uri(type), "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    body.update(extensions)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _slug_for(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "-").replace("'", "")
    except ValueError:
        return "http-error"


def _title_for(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "HTTP error"


def problem_error_response(problem: ProblemError, *, instance: str | None = None) -> JSONResponse:
    """The problem+json response a ProblemError stands for."""
    return problem_response(
        problem.status,
        problem.type,
        problem.title,
        problem.detail,
        instance=instance,
        headers=problem.headers,
        **problem.extensions,
    )


def public_instance(request: Request) -> str:
    """The request's path as the client sent it, for a problem's ``instance``.

    Behind the gateway that is the public path (under the route's prefix, from
    X-Forwarded-Prefix), never the path the service itself serves it under.
    """
    return public_path(request.headers, request.url.path)


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)  # noqa: S101 - registered for this type only
    return problem_error_response(exc, instance=public_instance(request))


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for this type only
    detail = (
        exc.detail
        if isinstance(exc.detail, str) and exc.detail != _title_for(exc.status_code)
        else None
    )
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem_response(
        exc.status_code,
        _slug_for(exc.status_code),
        _title_for(exc.status_code),
        detail,
        instance=public_instance(request),
        headers=headers,
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves the request's path with (a 405's ``Allow``).

    Starlette names only the first route whose path matched; a path served by several
    (``GET /orders`` and ``POST /orders``) would seem to allow one method. HEAD comes with
    GET (``chassis.head``).
    """
    routes = request.app.router.routes
    methods = {
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    }
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


async def validation_error_response(request: Request, exc: Exception) -> JSONResponse:
    """The 422 problem of a request FastAPI could not validate (also for an app's own
    handler of RequestValidationError to fall back on, as bff-web's HTML pages do)."""
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this type only
    errors = [
        {
            "location": [str(part) for part in error.get("loc", ())],
            "message": str(error.get("msg", "")),
            "code": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    return problem_response(
        422,
        "validation-error",
        "The request is not valid",
        "; ".join(f"{'.'.join(e['location'])}: {e['message']}" for e in errors) or None,
        instance=public_instance(request),
        errors=errors,
    )


def internal_error_response(path: str, exc: BaseException) -> JSONResponse:
    """Log an unhandled error with its traceback and answer a 500 problem without details."""
    _log.error("unhandled error", path=path, error=type(exc).__name__, exc_info=exc)
    return problem_response(
        500,
        "internal-error",
        "Internal Server Error",
        "An unexpected error occurred; quote the request id when reporting it.",
        instance=path,
    )


async def _on_storage_unavailable(request: Request, exc: Exception) -> JSONResponse:
    _log.warning("storage unavailable", path=request.url.path, error=str(exc))
    return problem_response(
        503,
        "storage-unavailable",
        "Service Unavailable",
        "The service's database cannot be used just now; try again shortly.",
        instance=public_instance(request),
        headers={"Retry-After": "1"},
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    return internal_error_response(public_instance(request), exc)


def install_problem_handlers(app: FastAPI) -> None:
    """Render framework, validation and unexpected errors as problem+json."""
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, validation_error_response)
    app.add_exception_handler(StorageUnavailableError, _on_storage_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)
