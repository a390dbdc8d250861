"""The request's deadline, carried in a context variable and across every hop.

The gateway gives each request a deadline; every process bounds its own work by what is
left of it: outgoing calls (``x-request-deadline-ms`` on HTTP, ``grpc-timeout`` on gRPC),
database statements and waits. The header carries the milliseconds *left* when it was sent,
not a point in time, so clocks of different machines never need to agree (as gRPC does).
"""

from __future__ import annotations

import contextlib
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

DEADLINE_HEADER: Final = "x-request-deadline-ms"
# A caller cannot ask for more than this; a malformed or absurd header is ignored.
_LONGEST_MS: Final = 10 * 60 * 1000

_deadline: ContextVar[float | None] = ContextVar("souk_deadline", default=None)


class DeadlineExceeded(TimeoutError):  # noqa: N818 - a state of the request, not a bug
    """The request's deadline passed: the work is not started (or is given up)."""


def remaining() -> float | None:
    """Seconds left before the current deadline (may be ≤ 0), or None without one."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def expires_at() -> float | None:
    """The current deadline as a ``time.monotonic()`` value, or None without one."""
    return _deadline.get()


def bounded(seconds: float) -> float:
    """``seconds``, or less if the current deadline comes sooner (never below 0)."""
    left = remaining()
    return seconds if left is None else max(0.0, min(seconds, left))


def bounded_or_none(seconds: float | None) -> float | None:
    """A call's timeout (``grpc-timeout``): ``seconds`` or what is left of the deadline,
    whichever is sooner; None if there is neither."""
    left = remaining()
    if left is None:
        return seconds
    left = max(0.0, left)
    return left if seconds is None else min(seconds, left)


def check() -> None:
    """Raise DeadlineExceeded if the current deadline has passed: do not start the work."""
    left = remaining()
    if left is not None and left <= 0:
        raise DeadlineExceeded("the request's deadline has passed")


@contextlib.contextmanager
def within(seconds: float | None) -> Iterator[None]:
    """Run the block under a deadline ``seconds`` from now, or the current one if sooner."""
    if seconds is None:
        yield
        return
    candidate = time.monotonic() + seconds
    current = _deadline.get()
    token = _deadline.set(candidate if current is None else min(current, candidate))
    try:
        yield
    finally:
        _deadline.reset(token)


def seconds_from_header(value: str | None) -> float | None:
    """The seconds a well-formed ``x-request-deadline-ms`` header grants, else None."""
    if value is None or not value.isdigit() or len(value) > 9:
        return None
    return min(int(value), _LONGEST_MS) / 1000


def outbound_header() -> dict[str, str]:
    """The deadline header for a call made now, or nothing without a deadline."""
    left = remaining()
    if left is None:
        return {}
    return {DEADLINE_HEADER: str(max(0, int(left * 1000)))}
