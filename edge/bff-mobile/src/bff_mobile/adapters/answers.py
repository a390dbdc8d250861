"""Reading another service's answer: a body of an unexpected shape is that service's failure."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from chassis.upstream import UpstreamFailure
from contracts import MoneyError

if TYPE_CHECKING:
    from collections.abc import Callable

    from chassis.upstream import HttpUpstream

T = TypeVar("T")


def read_answer(upstream: HttpUpstream, method: str, path: str, read: Callable[[], T]) -> T:
    """What ``read`` makes of an answer's body; a non-transient UpstreamFailure if it cannot."""
    try:
        return read()
    except (KeyError, IndexError, TypeError, ValueError, MoneyError) as error:
        raise UpstreamFailure(
            upstream.name,
            f"{method} {path} answered what bff-mobile cannot read: {type(error).__name__}",
            transient=False,
        ) from error
