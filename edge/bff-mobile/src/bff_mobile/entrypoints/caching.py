"""Conditional GETs of one customer's data: an ETag per customer and version, 304 on a match.

The tag is made of the body *and* the token's subject, so two customers with the same
body (two empty carts) never share a tag: a cache that keyed on tags could not hand one
customer's answer to another. ``Cache-Control: private, no-cache`` keeps shared caches out
and makes the phone ask again each time, cheaply, with If-None-Match.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi.encoders import jsonable_encoder
from starlette.responses import Response

from chassis.etags import etag_for, etag_matches

if TYPE_CHECKING:
    from starlette.requests import Request

CACHE_CONTROL = "private, no-cache"


def private_json(request: Request, subject: str, content: Any) -> Response:
    """JSON for ``subject`` with their own ETag; 304 Not Modified if they already have it."""
    body = json.dumps(jsonable_encoder(content), ensure_ascii=False, separators=(",", ":")).encode()
    etag = etag_for(subject.encode() + b"\n" + body)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Authorization"}
    if request.method in {"GET", "HEAD"} and etag_matches(
        request.headers.get("if-none-match"), etag
    ):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
