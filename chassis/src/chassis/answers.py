"""Reading another service's answer: a body of an unexpected shape is that service's failure.

A client adapter turns a JSON body into its own values inside :func:`read_answer`, so a
missing field or a value of the wrong type is reported as the upstream's fault (a
non-transient :class:`~chassis.upstream.UpstreamFailure`, never retried), not as a bug of
the caller that crashes with a KeyError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from chassis.upstream import UpstreamFailure

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


def read_answer(upstream: str, method: str, path: str, read: Callable[[], T]) -> T:
    """What ``read`` makes of an answer's body; a non-transient UpstreamFailure if it cannot."""
    try:
        return read()
    except (KeyError, IndexError, TypeError, ValueError) as error:  # MoneyError is a ValueError
        raise UpstreamFailure(
            upstream,
            f"{method} {path} answered a body of a shape this service cannot read: "
            f"{type(error).__name__}",
            transient=False,
        ) from error
