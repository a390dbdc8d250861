"""Request identity: the ``X-Request-Id`` that follows a request across processes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from contextvars import ContextVar

from chassis.resilience import deadline
from chassis.tracing import inject_context

REQUEST_ID_HEADER = "x-request-id"
INSTANCE_HEADER = "x-souk-instance"
FORWARDED_PREFIX_HEADER = "x-forwarded-prefix"

# Accept a caller's id only if it is short and plain, so it is safe in logs and headers.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_VALID_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")

request_id_var: ContextVar[str | None] = ContextVar("souk_request_id", default=None)


def request_id_from(header: str | None) -> str:
    """The caller's request id if well-formed, else a fresh one."""
    if header and _VALID_REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


def outbound_headers() -> dict[str, str]:
    """Headers that carry the current request id, trace context and what is left of the
    request's deadline to another service."""
    headers: dict[str, str] = deadline.outbound_header()
    request_id = request_id_var.get()
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    inject_context(headers)
    return headers


def public_path(headers: Mapping[str, str], path: str) -> str:
    """``path`` as a client outside sees it: behind the gateway, under its route prefix.

    For ``Location`` headers and links: the gateway strips ``/api/<service>`` before
    forwarding and says so in ``X-Forwarded-Prefix``.
    """
    prefix = headers.get(FORWARDED_PREFIX_HEADER, "")
    return f"{prefix}{path}" if _VALID_PREFIX.match(prefix) else path
