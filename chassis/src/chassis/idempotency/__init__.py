"""The Idempotency-Key: one rule for reading it, one store for what each key did.

A route that changes something a retry could repeat declares
``key: Annotated[str, idempotency_key("order")]`` (:mod:`~chassis.idempotency.header`);
the service keeps what the key did in the ``idempotency_keys`` table, in the transaction of
its own state, through :class:`IdempotencyKeys` (:mod:`~chassis.idempotency.store`).
"""

from chassis.idempotency.header import (
    IDEMPOTENCY_KEY_MAX_LENGTH,
    IDEMPOTENCY_KEY_PATTERN,
    check_idempotency_key,
    idempotency_key,
)
from chassis.idempotency.store import (
    IDEMPOTENCY_KEY_COLUMN_LENGTH,
    IdempotencyKeys,
    IdempotencyRecord,
    idempotency_keys_table,
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
