"""The clients of the other services answer the service layer's errors, not the transport's:
an UpstreamFailure (HTTP or gRPC, from the chassis) becomes the ports' NoUsableAnswer."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from chassis.upstream import UpstreamFailure
from orders.service_layer.ports import NoUsableAnswer

P = ParamSpec("P")
R = TypeVar("R")


def port_errors(
    call: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """``call``, raising NoUsableAnswer where it raised UpstreamFailure."""

    @functools.wraps(call)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await call(*args, **kwargs)
        except UpstreamFailure as failure:
            raise NoUsableAnswer(str(failure), transient=failure.transient) from failure

    return translated
