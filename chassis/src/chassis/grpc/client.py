"""Channels to a gRPC upstream's replicas: round robin, each call with its context."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

import grpc

from chassis.grpc.interceptors import OutboundContextInterceptor

_ROUND_ROBIN = ("grpc.lb_policy_name", "round_robin")


def grpc_target(urls: Sequence[str]) -> str:
    """One gRPC target naming every replica: ``grpc://127.0.0.1:1``, ``…:2`` → ``ipv4:…``.

    IP addresses become an ``ipv4:``/``ipv6:`` address list; a single host name becomes a
    ``dns:///`` target, whose addresses the resolver looks up.
    """
    if not urls:
        raise ValueError("no gRPC address given")
    addresses: list[tuple[str, int]] = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme != "grpc" or not parts.hostname or parts.port is None:
            raise ValueError(f"{url!r} is not a grpc://host:port address")
        addresses.append((parts.hostname, parts.port))
    versions: set[int] = set()
    for host, _ in addresses:
        try:
            versions.add(ipaddress.ip_address(host).version)
        except ValueError:
            versions.add(0)
    if versions == {4}:
        return "ipv4:" + ",".join(f"{host}:{port}" for host, port in addresses)
    if versions == {6}:
        return "ipv6:" + ",".join(f"[{host}]:{port}" for host, port in addresses)
    if len(addresses) == 1:
        host, port = addresses[0]
        return f"dns:///{host}:{port}"
    raise ValueError(f"give replicas as IP addresses of one family to balance over: {urls}")


def channel_for(urls: Sequence[str]) -> grpc.aio.Channel:
    """A channel to every replica in ``urls`` (``settings.upstream(name)``), round robin.

    Each call carries the current request id and trace context as metadata, and no longer
    a timeout than is left of the request's deadline (``grpc-timeout``). Create it
    inside the running event loop and close it at shutdown.
    """
    return grpc.aio.insecure_channel(
        grpc_target(urls), options=[_ROUND_ROBIN], interceptors=[OutboundContextInterceptor()]
    )
