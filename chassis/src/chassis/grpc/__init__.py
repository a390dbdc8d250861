"""gRPC beside HTTP in one process: a server with health, reflection and request context.

A service's composition root creates a :class:`GrpcServer` and hands its ``start``,
``stop`` and ``check`` to :func:`chassis.create_app`. Callers reach a gRPC service's
replicas through one :func:`channel_for` channel that balances calls round robin.

gRPC core is not fork-safe: servers and channels are created inside the running event
loop (in ``start`` and by callers at start-up), never at import time.

``server`` holds the server, ``client`` the channels, ``interceptors`` what every call
passes through on either side (trace, request id, metrics, access log, tokens).
"""

from chassis.grpc.client import GrpcUpstream, channel_for, grpc_target
from chassis.grpc.interceptors import BearerTokenInterceptor
from chassis.grpc.server import GrpcServer, Register

__all__ = [
    "BearerTokenInterceptor",
    "GrpcServer",
    "GrpcUpstream",
    "Register",
    "channel_for",
    "grpc_target",
]
