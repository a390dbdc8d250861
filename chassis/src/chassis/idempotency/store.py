"""What each Idempotency-Key did, in the service's own database: one table shape, one store.

Every service keeps its keys in a table named ``idempotency_keys`` whose primary key is the
key and which holds a digest of the request that first came with it (``fingerprint``): the
same key with another request is a reuse, the same request again is a replay. What the key
made (an order, a payment) and anything else the service must remember about it are columns
of its own, given to :func:`idempotency_keys_table` and named as the fields of its
:class:`IdempotencyRecord` subclass. The primary key is what stops two concurrent requests
with one key from both acting: the second insert fails, and the store says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from sqlalchemy import CHAR, Column, CursorResult, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from chassis.idempotency.header import IDEMPOTENCY_KEY_MAX_LENGTH

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import MetaData
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.sql.schema import SchemaItem

IDEMPOTENCY_KEY_COLUMN_LENGTH: Final = 2 * IDEMPOTENCY_KEY_MAX_LENGTH - 1
"""The key column's width, 255: above the rule's 128, so keys stored under billing's older,
longer rule still fit."""
FINGERPRINT_LENGTH: Final = 64
"""A SHA-256 digest of the request, in hex."""
TABLE_NAME: Final = "idempotency_keys"


@dataclass(slots=True)
class IdempotencyRecord:
    """A key and the digest of the request that first came with it.

    A service subclasses it with what the key made and whatever else it keeps, each field a
    column of its table of the same name.
    """

    key: str
    fingerprint: str


def idempotency_keys_table(metadata: MetaData, *columns: SchemaItem) -> Table:
    """The ``idempotency_keys`` table: the key, the fingerprint, then the service's ``columns``
    (and constraints: a foreign key to what the key made, say)."""
    return Table(
        TABLE_NAME,
        metadata,
        Column("key", String(IDEMPOTENCY_KEY_COLUMN_LENGTH), primary_key=True),
        Column("fingerprint", CHAR(FINGERPRINT_LENGTH), nullable=False),
        *columns,
    )


R = TypeVar("R", bound=IdempotencyRecord)


class IdempotencyKeys(Generic[R]):
    """The keys in ``table``, as records of type ``record``, in one session's transaction.

    ``taken`` makes the service's own error when another request stored the key first (on
    :meth:`add`) or changed its record since it was read (on :meth:`save`).
    """

    def __init__(
        self,
        session: AsyncSession,
        table: Table,
        record: type[R],
        *,
        taken: Callable[[str], Exception],
    ) -> None:
        self._session = session
        self._table = table
        self._record = record
        self._taken = taken
        self._fields = tuple(field.name for field in dataclasses.fields(record))

    async def get(self, key: str) -> R | None:
        """The record of ``key``, or None."""
        row = (
            await self._session.execute(select(self._table).where(self._table.c.key == key))
        ).one_or_none()
        return None if row is None else self._record(**self._values(row._mapping))

    async def add(self, record: R) -> None:
        """Store a new key; raises ``taken`` if another request stored it first."""
        try:
            await self._session.execute(insert(self._table).values(self._values(record)))
        except IntegrityError as error:
            # The key was absent when looked up: a concurrent request stored it since.
            raise self._taken(record.key) from error

    async def save(self, record: R) -> None:
        """Store a changed record, only over the version it was read at, and bump that.

        For records with a ``version`` field; raises ``taken`` if the record changed since it
        was read: two requests cannot both take over one key.
        """
        version: int = getattr(record, "version")  # noqa: B009 - checked for below
        changed = {
            name: value
            for name, value in self._values(record).items()
            if name not in {"key", "fingerprint", "version"}
        }
        result = await self._session.execute(
            update(self._table)
            .where(self._table.c.key == record.key, self._table.c.version == version)
            .values(**changed, version=version + 1)
        )
        if not isinstance(result, CursorResult) or result.rowcount != 1:
            raise self._taken(record.key)
        setattr(record, "version", version + 1)  # noqa: B010 - the field every saved record has

    def _values(self, source: Any) -> dict[str, Any]:
        if isinstance(source, IdempotencyRecord):
            return {name: getattr(source, name) for name in self._fields}
        return {name: source[name] for name in self._fields}
