"""HTTP clients that reach every instance of a running system, wherever it listens.

With the mesh on, an application opens no TCP port: it listens on a Unix socket (mode 0600)
only its sidecar and this OS user's own tools reach, and its state record's URL is
``http://<instance id>``. These clients send a request for such a URL to the instance's
socket (httpx mounts, one per instance) and every other URL over TCP as usual, so the
operator's commands work the same with the mesh on or off.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from souk.state import InstanceRecord


def _sockets(records: Iterable[InstanceRecord]) -> dict[str, str]:
    return {f"http://{r.instance}": r.socket for r in records if r.socket is not None}


def async_client(records: Iterable[InstanceRecord] = (), **options: Any) -> httpx.AsyncClient:
    """An async client (no proxy from the environment) that reaches ``records`` on their
    sockets."""
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {
        pattern: httpx.AsyncHTTPTransport(uds=path) for pattern, path in _sockets(records).items()
    }
    return httpx.AsyncClient(trust_env=False, mounts=mounts, **options)


def client(records: Iterable[InstanceRecord] = (), **options: Any) -> httpx.Client:
    """The same, synchronous."""
    mounts: dict[str, httpx.BaseTransport | None] = {
        pattern: httpx.HTTPTransport(uds=path) for pattern, path in _sockets(records).items()
    }
    return httpx.Client(trust_env=False, mounts=mounts, **options)
