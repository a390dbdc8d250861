"""Product pictures until the catalog has photographs: an SVG tile per product.

Colours and pattern come from a hash of the product id, so a product always looks the
same and neighbours differ; nothing is fetched, so the image costs no upstream call.
"""

from __future__ import annotations

import hashlib
import math
from typing import Final

_SIZE: Final = 320
# The souk's own colours: terracotta, saffron, ochre, mint, teal, Majorelle blue, indigo, rose.
_GROUNDS: Final = (12, 28, 40, 160, 188, 224, 262, 340)


def _hsl(hue: int, saturation: int, lightness: int) -> str:
    return f"hsl({hue % 360} {saturation}% {lightness}%)"


def product_svg(product_id: str) -> str:
    """A square SVG: a two-tone ground, a zellige star and a ring of dots."""
    digest = hashlib.sha256(product_id.encode()).digest()
    hue = _GROUNDS[digest[0] % len(_GROUNDS)] + digest[1] % 12
    accent = hue + 150 + digest[2] % 60
    points = 8 + 4 * (digest[3] % 3)  # an 8-, 12- or 16-pointed star
    centre, outer, inner = _SIZE / 2, 96 + digest[4] % 24, 52 + digest[5] % 16
    star = " ".join(
        f"{centre + radius * _cos(i, points * 2):.1f},{centre + radius * _sin(i, points * 2):.1f}"
        for i in range(points * 2)
        for radius in (outer if i % 2 == 0 else inner,)
    )
    dots = "".join(
        f'<circle cx="{centre + 138 * _cos(i, 24):.1f}" cy="{centre + 138 * _sin(i, 24):.1f}" '
        f'r="5" fill="{_hsl(accent, 45, 82)}"/>'
        for i in range(24)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_SIZE} {_SIZE}" '
        f'width="{_SIZE}" height="{_SIZE}" role="img" aria-hidden="true">'
        f'<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">'
        f'<stop offset="0" stop-color="{_hsl(hue, 52, 44)}"/>'
        f'<stop offset="1" stop-color="{_hsl(hue + 20, 58, 26)}"/></linearGradient></defs>'
        f'<rect width="{_SIZE}" height="{_SIZE}" fill="url(#g)"/>{dots}'
        f'<polygon points="{star}" fill="{_hsl(accent, 55, 64)}" '
        f'stroke="{_hsl(hue, 40, 92)}" stroke-width="4"/>'
        f'<circle cx="{centre}" cy="{centre}" r="{inner / 2:.1f}" fill="{_hsl(hue, 60, 92)}"/>'
        "</svg>"
    )


def _cos(step: int, steps: int) -> float:
    return math.cos(2 * math.pi * step / steps - math.pi / 2)


def _sin(step: int, steps: int) -> float:
    return math.sin(2 * math.pi * step / steps - math.pi / 2)
