"""Opaque list cursors: a position in a customer's orders, as a string clients pass back.

The cursor is base64url JSON of the position's key. It is opaque to clients, not secret: it
only narrows the caller's own listing, so a forged one can show nothing that is not theirs.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Final

from chassis import ProblemError
from orders.service_layer.ports import ListPosition

CURSOR_MAX_LENGTH: Final = 200


def cursor_of(position: ListPosition) -> str:
    """The opaque cursor that names ``position``."""
    key = json.dumps([position.created_at.isoformat(), position.order_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def position_of(cursor: str) -> ListPosition:
    """The position ``cursor`` names; a 400 ``invalid-cursor`` problem if it names none."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        created_at, order_id = key
        moment = datetime.fromisoformat(created_at)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise _invalid(cursor) from None
    if not isinstance(order_id, str) or moment.tzinfo is None:
        raise _invalid(cursor)
    try:
        # 0001-01-01T00:00+01:00 is a valid ISO time that no UTC datetime can hold: the query
        # would fail on it (OverflowError, "date value out of range").
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise _invalid(cursor) from None
    return ListPosition(created_at=moment, order_id=order_id)


def _invalid(cursor: str) -> ProblemError:
    return ProblemError(
        400,
        "invalid-cursor",
        "Invalid cursor",
        f"{cursor[:40]!r} is not a cursor this listing gave; start again without one.",
    )
