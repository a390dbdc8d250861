"""Client-side load balancing: round robin with passive ejection of refusing instances."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable


class RoundRobin:
    """Hands out one upstream's instances in turn, skipping those recently found down.

    An instance that refused a connection is ejected for ``eject_seconds``; while ejected it
    is tried only after every healthy one, so traffic still flows if all are ejected.
    """

    def __init__(
        self,
        urls: list[str],
        *,
        eject_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError("a balancer needs at least one instance")
        self.urls = list(urls)
        self.eject_seconds = eject_seconds
        self._clock = clock
        self._turn = itertools.count()
        self._ejected_until: dict[str, float] = {}

    def candidates(self) -> list[str]:
        """Every instance once, in the order to try them for the next request."""
        start = next(self._turn) % len(self.urls)
        ordered = self.urls[start:] + self.urls[:start]
        now = self._clock()
        healthy = [u for u in ordered if self._ejected_until.get(u, 0.0) <= now]
        ejected = sorted(
            (u for u in ordered if u not in healthy), key=lambda u: self._ejected_until[u]
        )
        return healthy + ejected

    def eject(self, url: str) -> None:
        self._ejected_until[url] = self._clock() + self.eject_seconds

    def restore(self, url: str) -> None:
        self._ejected_until.pop(url, None)

    def is_ejected(self, url: str) -> bool:
        return self._ejected_until.get(url, 0.0) > self._clock()
