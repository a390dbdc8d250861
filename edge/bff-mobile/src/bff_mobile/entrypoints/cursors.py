"""The orders list's opaque cursor: orders' own keyset cursor, wrapped with a version.

The wrapping lets bff-mobile refuse a cursor it never gave before it calls anyone, and
change what is inside later while telling old cursors apart. It is opaque, not secret:
orders lists only the token's subject's orders whatever the cursor says.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from bff_mobile.domain.errors import InvalidCursor

CURSOR_MAX_LENGTH: Final = 400
_VERSION: Final = "m1:"


def wrap(orders_cursor: str) -> str:
    """The cursor the app gets for orders' ``orders_cursor``."""
    return base64.urlsafe_b64encode((_VERSION + orders_cursor).encode()).decode().rstrip("=")


def unwrap(cursor: str) -> str:
    """Orders' cursor inside ``cursor``; raises InvalidCursor if this API did not make it."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidCursor from None
    inner = text.removeprefix(_VERSION)
    if inner == text or not inner.isprintable() or not inner:
        raise InvalidCursor
    return inner
