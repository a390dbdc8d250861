"""The orders list's cursor: opaque to the app, refused when this API did not make it."""

from __future__ import annotations

import base64

import pytest

from bff_mobile.domain.errors import InvalidCursor
from bff_mobile.entrypoints.cursors import unwrap, wrap


def test_a_cursor_given_out_unwraps_to_orders_cursor() -> None:
    cursor = wrap("WyIyMDI2LTExLTI1VDEwOjAwOjAwKzAwOjAwIiwibzEiXQ")

    assert unwrap(cursor) == "WyIyMDI2LTExLTI1VDEwOjAwOjAwKzAwOjAwIiwibzEiXQ"
    assert "=" not in cursor


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage!",
        "not-a-cursor",
        base64.urlsafe_b64encode(b"m2:abc").decode(),  # another version
        base64.urlsafe_b64encode(b"m1:").decode(),  # nothing inside
        base64.urlsafe_b64encode(b"m1:\x00\x01").decode(),
        base64.urlsafe_b64encode("m1:é".encode()).decode(),
    ],
)
def test_a_cursor_this_api_did_not_make_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        unwrap(cursor)
