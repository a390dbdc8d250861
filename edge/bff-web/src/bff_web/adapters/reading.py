"""Reading another service's JSON: a document of the wrong shape is that service's failure."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from chassis.upstream import UpstreamFailure

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


def read(upstream: str, path: str, parse: Callable[[], T]) -> T:
    """``parse()``'s result; an UpstreamFailure (not retried) if the body lacks what it needs."""
    try:
        return parse()
    except (KeyError, TypeError, ValueError) as error:
        raise UpstreamFailure(
            upstream,
            f"{path} answered a document the storefront cannot read: {type(error).__name__}",
            transient=False,
        ) from error
