"""The Idempotency-Key: one rule for reading it, one store for what each key did.

A route that changes something a retry could repeat declares
``key: Annotated[str, idempotency_key("order")]`` (:mod:`~chassis.idempotency.header`);
the service keeps what the key did in the ``idempotency_keys`` table, in the transaction of
its own state, through :class:`IdempotencyKeys` (:mod:`~chassis.idempotency.store`).

The store's names are loaded on first use: every app reads the header's rule (its OpenAPI
document names it), but a process without a database never loads SQLAlchemy for the store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from chassis.idempotency.header import (
    IDEMPOTENCY_KEY_MAX_LENGTH,
    IDEMPOTENCY_KEY_PATTERN,
    check_idempotency_key,
    idempotency_key,
)

if TYPE_CHECKING:
    from chassis.idempotency.store import (
        IDEMPOTENCY_KEY_COLUMN_LENGTH,
        IdempotencyKeys,
        IdempotencyRecord,
        idempotency_keys_table,
    )

_IN_STORE = frozenset(
    {
        "IDEMPOTENCY_KEY_COLUMN_LENGTH",
        "IdempotencyKeys",
        "IdempotencyRecord",
        "idempotency_keys_table",
    }
)

__all__ = [
    "IDEMPOTENCY_KEY_COLUMN_LENGTH",
    "IDEMPOTENCY_KEY_MAX_LENGTH",
    "IDEMPOTENCY_KEY_PATTERN",
    "IdempotencyKeys",
    "IdempotencyRecord",
    "check_idempotency_key",
    "idempotency_key",
    "idempotency_keys_table",
]


def __getattr__(name: str) -> Any:
    if name not in _IN_STORE:
        raise AttributeError(f"module 'chassis.idempotency' has no attribute {name!r}")
    value = getattr(importlib.import_module("chassis.idempotency.store"), name)
    globals()[name] = value
    return value
