"""The Idempotency-Key header: one rule for every route that must not act twice.

A route that changes something a retry could repeat (an order, a payment, a ledger entry)
declares ``key: Annotated[str, idempotency_key("order")]``; the key is read and checked
before the body is, and a missing, blank or odd key is a 400 problem. The service stores
what the key did next to its own state, in its own transaction.
"""

# No ``from __future__ import annotations``: FastAPI reads the header's annotation at run
# time, and it names the route's own description.
import re
from typing import Annotated, Final

from fastapi import Header, params

from chassis.problems import ProblemError

IDEMPOTENCY_KEY_MAX_LENGTH: Final = 128
"""Room for a UUID and a suffix; every service's key column holds at least this much."""

IDEMPOTENCY_KEY_PATTERN: Final = rf"^[A-Za-z0-9._:-]{{1,{IDEMPOTENCY_KEY_MAX_LENGTH}}}$"
"""What a usable key is (the services' OpenAPI documents say so too: chassis.openapi)."""

_IDEMPOTENCY_KEY: Final = re.compile(IDEMPOTENCY_KEY_PATTERN)


def check_idempotency_key(key: str | None, *, twice: str) -> str:
    """``key`` if it is a usable Idempotency-Key; else the 400 problem that says why.

    ``twice`` ends the sentence "so a retry cannot ... twice" (``"order"``, ``"move money"``).
    """
    if key is None or not key.strip():
        raise ProblemError(
            400,
            "idempotency-key-required",
            "Idempotency-Key required",
            f"Send an Idempotency-Key header, new for each request (a UUID, say), so a retry "
            f"cannot {twice} twice.",
        )
    if not _IDEMPOTENCY_KEY.match(key):
        raise ProblemError(
            400,
            "idempotency-key-invalid",
            "Idempotency-Key invalid",
            f"An Idempotency-Key is 1-{IDEMPOTENCY_KEY_MAX_LENGTH} letters, digits, "
            "'.', '_', ':' or '-', such as a UUID.",
        )
    return key


def idempotency_key(twice: str, *, description: str) -> params.Depends:
    """A dependency that gives the route its checked Idempotency-Key (400 problem if unusable)."""

    def checked_idempotency_key(
        key: Annotated[str | None, Header(alias="Idempotency-Key", description=description)] = None,
    ) -> str:
        return check_idempotency_key(key, twice=twice)

    return params.Depends(checked_idempotency_key)
