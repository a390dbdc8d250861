"""The storefront's own assets: its stylesheet and script, and the product pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from bff_web.entrypoints.placeholders import product_svg

STATIC_DIRECTORY: Final = Path(__file__).parent / "static"
# Pictures never change for an id; the stylesheet and script change with releases.
_IMAGE_CACHE: Final = "public, max-age=86400, immutable"

router = APIRouter(include_in_schema=False)


@router.get("/images/products/{product_id}.svg")
async def product_image(product_id: str) -> Response:
    return Response(
        product_svg(product_id),
        media_type="image/svg+xml",
        headers={"Cache-Control": _IMAGE_CACHE},
    )


@router.get("/favicon.ico")
async def favicon() -> Response:
    """Browsers ask every site for it, pages of identity's behind the gateway included."""
    return Response(
        (STATIC_DIRECTORY / "favicon.svg").read_bytes(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def static_files() -> StaticFiles:
    """``/static``: self-hosted, so the shop works with no internet and no CDN."""
    return StaticFiles(directory=STATIC_DIRECTORY)
