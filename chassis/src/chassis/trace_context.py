"""W3C Trace Context (levels 1 and 2): ``traceparent`` and ``tracestate`` in and out.

OpenTelemetry's own propagator falls short of the specification in three ways the W3C test
suite catches (third_party/trace-context): it reads only the first ``traceparent`` where two
mean "start a new trace", it drops a whole ``tracestate`` on one key its older grammar
refuses (``foo@@bar``), and it keeps no level-2 random flag. Callers also hand it Starlette's
``Headers``, whose ``get`` returns only the first of repeated ``tracestate`` lines, which must
be combined. This propagator reads every line, keeps the incoming ``tracestate`` verbatim
(validated as a whole) and the random flag in the context, and writes them back out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_setter,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
RANDOM_FLAG = 0x02
_SAMPLED_FLAG = 0x01
_MAX_MEMBERS = 32

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_KEY = re.compile(r"^[0-9a-z][_0-9a-z\-*/@]{0,255}$")
_VALUE = re.compile(r"^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$")
_MEMBER_SEPARATOR = re.compile(r"[ \t]*,[ \t]*")
_INCOMING = otel_context.create_key("souk-incoming-trace-context")


def unsampled_traceparent() -> str:
    """A ``traceparent`` of a fresh trace with the sampled flag off, for a caller that wants
    no span recorded for its request (a probe, a scrape): a chassis service's sampler follows
    its parent's decision, so the request is neither recorded nor exported."""
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-00"


@dataclass(frozen=True, slots=True)
class _Incoming:
    """What arrived with a trace beyond what OpenTelemetry's span context keeps."""

    trace_id: int
    random: bool
    tracestate: str


def parse_traceparent(value: str) -> tuple[int, int, int] | None:
    """``(trace_id, parent_id, flags)`` of a valid ``traceparent``, else None."""
    match = _TRACEPARENT.match(value.strip(" \t"))
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    trace_number, parent_number = int(trace_id, 16), int(parent_id, 16)
    if trace_number == 0 or parent_number == 0:
        return None
    return trace_number, parent_number, int(flags, 16)


def parse_tracestate(lines: Iterable[str]) -> list[tuple[str, str]] | None:
    """The members of ``tracestate`` header lines, combined in order; None if any is invalid.

    Empty members are allowed (and skipped); a duplicate key keeps its first value. Over 32
    members, a bad key or a bad value make the whole header invalid: it is not propagated.
    """
    members: list[tuple[str, str]] = []
    seen: set[str] = set()
    for line in lines:
        for member in _MEMBER_SEPARATOR.split(line.strip(" \t")):
            if not member:
                continue
            key, equals, value = member.partition("=")
            if not equals or not _KEY.match(key) or not _VALUE.match(value):
                return None
            if key not in seen:
                seen.add(key)
                members.append((key, value))
    if len(members) > _MAX_MEMBERS:
        return None
    return members


def values_of(carrier: Any, name: str) -> list[str]:
    """Every value of header ``name`` in ``carrier``, in order, whatever shape it has.

    Starlette's ``Headers`` (``getlist``), aiohttp's and multidict's (``getall``), gRPC
    metadata or any sequence of ``(name, value)`` pairs, and plain mappings.
    """
    if hasattr(carrier, "getlist"):
        return list(carrier.getlist(name))
    if hasattr(carrier, "getall"):
        return list(carrier.getall(name, []))
    if isinstance(carrier, Mapping):
        found = [value for key, value in carrier.items() if key.lower() == name]
        return [item for value in found for item in (value if isinstance(value, list) else [value])]
    if isinstance(carrier, Sequence | tuple):
        return [
            value
            for key, value in carrier
            if isinstance(key, str) and key.lower() == name and isinstance(value, str)
        ]
    return []


class _AllValuesGetter(Getter[Any]):
    def get(self, carrier: Any, key: str) -> list[str] | None:
        return values_of(carrier, key) or None

    def keys(self, carrier: Any) -> list[str]:
        if isinstance(carrier, Mapping):
            return [str(key) for key in carrier]
        return [str(key) for key, _ in carrier]


all_values_getter = _AllValuesGetter()


class W3CTraceContextPropagator(TextMapPropagator):
    """A conformant ``traceparent``/``tracestate`` propagator (see the module's docstring)."""

    def extract(
        self,
        carrier: CarrierT,
        context: otel_context.Context | None = None,
        getter: Getter[CarrierT] = all_values_getter,
    ) -> otel_context.Context:
        context = context if context is not None else otel_context.Context()
        parents = getter.get(carrier, TRACEPARENT) or []
        # Two traceparent lines are ambiguous: the trace restarts here.
        parsed = parse_traceparent(parents[0]) if len(parents) == 1 else None
        if parsed is None:
            return context
        trace_id, parent_id, flags = parsed
        members = parse_tracestate(getter.get(carrier, TRACESTATE) or [])
        tracestate = ",".join(f"{key}={value}" for key, value in members or ())
        span_context = SpanContext(
            trace_id=trace_id,
            span_id=parent_id,
            is_remote=True,
            trace_flags=TraceFlags(flags & _SAMPLED_FLAG),
        )
        context = trace.set_span_in_context(NonRecordingSpan(span_context), context)
        incoming = _Incoming(trace_id, bool(flags & RANDOM_FLAG), tracestate)
        return otel_context.set_value(_INCOMING, incoming, context)

    def inject(
        self,
        carrier: CarrierT,
        context: otel_context.Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        span_context = trace.get_current_span(context).get_span_context()
        if not span_context.is_valid:
            return
        incoming = otel_context.get_value(_INCOMING, context)
        if isinstance(incoming, _Incoming) and incoming.trace_id == span_context.trace_id:
            random, tracestate = incoming.random, incoming.tracestate
        else:
            # A trace started here has its id from the SDK's random generator (level 2).
            random, tracestate = True, span_context.trace_state.to_header()
        flags = (span_context.trace_flags & _SAMPLED_FLAG) | (RANDOM_FLAG if random else 0)
        setter.set(
            carrier,
            TRACEPARENT,
            f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{flags:02x}",
        )
        if tracestate:
            setter.set(carrier, TRACESTATE, tracestate)

    @property
    def fields(self) -> set[str]:
        return {TRACEPARENT, TRACESTATE}
