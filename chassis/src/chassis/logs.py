"""Structured JSON logs on stdout carrying service, instance, request id and trace id."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from opentelemetry import trace

if TYPE_CHECKING:
    from structlog.typing import EventDict, Processor, WrappedLogger

    from chassis.settings import ServiceSettings


def _add_trace_context(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


# Updated in place, because structlog caches each logger's processors on first use.
_identity: dict[str, str] = {}


def _add_identity(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    for key, value in _identity.items():
        event.setdefault(key, value)
    return event


def configure_logging(settings: ServiceSettings, *, stream: Any = None) -> None:
    """Route structlog and the stdlib (uvicorn, SQLAlchemy) through one JSON renderer."""
    _identity.clear()
    _identity.update(service=settings.service, instance=settings.instance_id)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_identity,
        _add_trace_context,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_json_line),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # The chassis writes one access line per request itself, with route, status and timing.
    logging.getLogger("uvicorn.access").disabled = True


def _json_line(event: EventDict, **options: Any) -> str:
    # orjson for every line (an access line per request): a third of the stdlib's cost.
    # It refuses what json.dumps also could not write without structlog's fallback handler,
    # which it is given as ``default``.
    return orjson.dumps(
        event, default=options.get("default"), option=orjson.OPT_NON_STR_KEYS
    ).decode()


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structured logger; bind request-scoped values with structlog.contextvars."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
