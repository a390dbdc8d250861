"""Strong ETags and conditional GET (``If-None-Match`` → 304)."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from fastapi.encoders import jsonable_encoder
from starlette.responses import Response

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request


def etag_for(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(header: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2) of an If-None-Match / If-Match header with ``etag``."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


def conditional_json(
    request: Request,
    content: Any,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """JSON with a strong ETag; 304 Not Modified when the client already has this version."""
    body = json.dumps(jsonable_encoder(content), ensure_ascii=False, separators=(",", ":")).encode()
    etag = etag_for(body)
    response_headers = {"ETag": etag, **(headers or {})}
    if request.method in {"GET", "HEAD"} and etag_matches(
        request.headers.get("if-none-match"), etag
    ):
        return Response(status_code=304, headers=response_headers)
    return Response(
        body, status_code=status_code, media_type="application/json", headers=response_headers
    )
