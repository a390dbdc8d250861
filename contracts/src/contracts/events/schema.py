"""What every event schema shares: JSON in and out, versions, upcasters, and decoding by type.

An event schema is a frozen dataclass subclassing :class:`Event`, with class-level
``event_type``, ``schema_version``, ``topic`` and ``key_field`` (the field whose value keys
the event on its topic), registered with :func:`register`.

Compatibility rules, so that producers and consumers can be upgraded one at a time:

- adding a field is compatible: give it a default (older payloads lack it) and consumers
  ignore the fields they do not know (newer payloads have them); no new version;
- any other change (a field renamed, removed, or changing shape) makes a new
  ``schema_version``, and an upcaster from the old version to the new one, so that a
  consumer still reads what older producers (and the dead letters) hold;
- a consumer refuses a version newer than its own: it cannot know what changed.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Self, TypeVar, Union

from contracts.money import Money, MoneyError

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns the JSON object of one version of an event into that of the next version."""

EventT = TypeVar("EventT", bound=type["Event"])
_T = TypeVar("_T")

_schemas: dict[str, type[Event]] = {}
_upcasters: dict[tuple[str, int], Upcaster] = {}


class EventError(ValueError):
    """A payload that cannot be read as an event."""


class UnknownEventType(EventError):  # noqa: N818 - named for what the consumer was sent
    """No schema has this event type."""


class UnsupportedSchemaVersion(EventError):  # noqa: N818 - named for what the consumer was sent
    """A version newer than the schema known here, or one that no upcaster leads on from."""


class MalformedEvent(EventError):  # noqa: N818 - named for what the consumer was sent
    """The payload is not the JSON of the event its type and version name."""


class Event:
    """Base of the event schemas: to JSON and back; subclasses are frozen dataclasses."""

    __slots__ = ()

    event_type: ClassVar[str]
    schema_version: ClassVar[int]
    topic: ClassVar[str]
    key_field: ClassVar[str]

    @property
    def key(self) -> str:
        """The event's key on its topic: events of one key are delivered in order."""
        key: str = getattr(self, self.key_field)
        return key

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON object."""
        return _encode_fields(self)

    def to_json(self) -> bytes:
        """The event's payload on the bus: compact UTF-8 JSON."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The event a JSON object of this version holds; fields it does not know are ignored."""
        return _decode_dataclass(cls, data, cls.__name__)


def to_json_object(value: object) -> dict[str, Any]:
    """A dataclass (an event, or a state a snapshot keeps) as a JSON object: the serializer
    every event uses, for the fields events may hold (text, numbers, booleans, Money,
    datetimes, enums, nested dataclasses, tuples, None)."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        raise TypeError(f"{type(value).__name__} is not a dataclass instance")
    return _encode_fields(value)


def from_json_object(cls: type[_T], data: Mapping[str, Any]) -> _T:
    """The dataclass ``cls`` a JSON object of :func:`to_json_object`'s holds; MalformedEvent
    if it holds none."""
    return _decode_dataclass(cls, data, cls.__name__)


def register(*schemas: EventT) -> None:
    """Make ``schemas`` known to :func:`decode` by their event type."""
    for schema in schemas:
        known = _schemas.get(schema.event_type)
        if known is not None and known is not schema:
            raise ValueError(f"event type {schema.event_type!r} is taken by {known.__name__}")
        _schemas[schema.event_type] = schema


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register the decorated function as the upcaster of ``event_type`` from ``from_version``."""

    def register_upcaster(upcast: Upcaster) -> Upcaster:
        _upcasters[(event_type, from_version)] = upcast
        return upcast

    return register_upcaster


def schemas() -> dict[str, type[Event]]:
    """Every registered schema, by event type."""
    return dict(_schemas)


def decode(
    event_type: str,
    schema_version: int,
    payload: bytes | str,
    *,
    schema: type[Event] | None = None,
) -> Event:
    """The event in ``payload``, upcast from ``schema_version`` to the schema's version.

    The schema is the registered one of ``event_type``, or ``schema`` (a type private to
    one service, such as a command or an event its stream keeps to itself).
    Raises UnknownEventType, UnsupportedSchemaVersion or MalformedEvent (all EventError).
    """
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedEvent(f"{event_type} payload is not JSON: {error}") from None
    return decode_data(event_type, schema_version, data, schema=schema)


def decode_data(
    event_type: str,
    schema_version: int,
    data: object,
    *,
    schema: type[Event] | None = None,
) -> Event:
    """:func:`decode` for a payload already parsed (as an event store's JSON column is)."""
    if schema is None:
        schema = _schemas.get(event_type)
    elif schema.event_type != event_type:
        schema = None  # a message of another type than the one expected
    if schema is None:
        known = ", ".join(sorted(_schemas))
        raise UnknownEventType(f"unknown event type {event_type!r}; known types: {known}")
    if not 1 <= schema_version <= schema.schema_version:
        raise UnsupportedSchemaVersion(
            f"{event_type} version {schema_version} is not known here: "
            f"this consumer reads versions 1 to {schema.schema_version}"
        )
    if not isinstance(data, Mapping):
        raise MalformedEvent(f"{event_type} payload is not a JSON object")
    data = dict(data)
    for version in range(schema_version, schema.schema_version):
        upcast = _upcasters.get((event_type, version))
        if upcast is None:
            raise UnsupportedSchemaVersion(f"no upcaster for {event_type} from version {version}")
        try:
            data = upcast(data)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise MalformedEvent(
                f"{event_type} version {version} cannot be upcast: {type(error).__name__}: {error}"
            ) from None
    return schema.from_dict(data)


def occurred_now() -> str:
    """This moment as an event's ``occurred_at``."""
    return timestamp(datetime.now(UTC))


def timestamp(moment: datetime) -> str:
    """``moment`` as events carry it: ISO 8601 in UTC."""
    if moment.tzinfo is None:
        raise ValueError("an event's moment must be timezone-aware")
    return moment.astimezone(UTC).isoformat()


def _encode_fields(value: Any) -> dict[str, Any]:
    return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}


def _encode(value: object) -> object:
    if isinstance(value, Money):
        return value.to_dict()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode_fields(value)
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    return value


def _decode_dataclass(cls: type[_T], data: object, path: str) -> _T:
    if not isinstance(data, Mapping):
        raise MalformedEvent(f"{path}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    values: dict[str, object] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name in data:
            values[field.name] = _decode(
                hints[field.name], data[field.name], f"{path}.{field.name}"
            )
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise MalformedEvent(f"{path}: field {field.name!r} is missing")
    return cls(**values)


_SCALARS: dict[type, str] = {str: "a string", int: "an integer", bool: "true or false"}


def _decode(hint: Any, value: object, path: str) -> object:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [option for option in options if option is not type(None)]
        return _decode(inner, value, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise MalformedEvent(f"{path}: expected a list, got {type(value).__name__}")
        (item, _) = typing.get_args(hint)
        return tuple(_decode(item, element, f"{path}[{i}]") for i, element in enumerate(value))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and hint is not Money:
        return _decode_dataclass(hint, value, path)
    return _decode_leaf(hint, value, path)


def _decode_leaf(hint: Any, value: object, path: str) -> object:
    if hint is Money:
        return _decode_money(value, path)
    if hint is datetime or (isinstance(hint, type) and issubclass(hint, enum.Enum)):
        return _decode_text(hint, value, path)
    if hint in _SCALARS:
        # Exact types: JSON's true is no integer, and 1 is no boolean.
        if type(value) is not hint:
            raise MalformedEvent(f"{path}: expected {_SCALARS[hint]}, got {value!r}")
        return value
    raise TypeError(f"{path}: events hold no {hint!r}")  # a schema bug, not a bad payload


def _decode_money(value: object, path: str) -> Money:
    if not isinstance(value, Mapping):
        raise MalformedEvent(f"{path}: expected an amount and a currency")
    try:
        return Money(value["amount"], value["currency"])
    except (KeyError, MoneyError) as error:
        raise MalformedEvent(f"{path}: not money: {error}") from None


def _decode_text(hint: Any, value: object, path: str) -> object:
    """A datetime (ISO 8601) or an enum member (its value), from the text JSON holds."""
    if not isinstance(value, str):
        raise MalformedEvent(f"{path}: expected text, got {value!r}")
    try:
        return datetime.fromisoformat(value) if hint is datetime else hint(value)
    except ValueError:
        raise MalformedEvent(f"{path}: {value!r} is no {hint.__name__}") from None
