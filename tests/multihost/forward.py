"""A TCP port-forward between network namespaces: ``python forward.py RULE...``.

Each RULE is ``LISTEN=CONNECT``, both ``NS/ADDRESS/PORT`` where NS is a name under
/run/netns or ``-`` for the namespace this process started in. The listening socket is made
in the first namespace, and every connection it accepts is relayed to a socket made in the
second: a socket stays in the namespace it was created in, whichever the process is in later.

It is a port-forward (like `kubectl port-forward` or an SSH tunnel), not a stand-in for any
server: bytes go through unchanged. The multi-host test uses it to make the machine's own
PostgreSQL and RabbitMQ (on the root namespace's loopback) reachable at the "database host"'s
address, and to let the test, in the root namespace, reach the gateway on the private LAN.
It prints ``ready`` once every listening socket is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import sys
from collections.abc import Iterator

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_HOME = os.open("/proc/self/ns/net", os.O_RDONLY)


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


@contextlib.contextmanager
def _inside(namespace: str) -> Iterator[None]:
    if namespace == "-":
        yield
        return
    fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        _setns(fd)
        try:
            yield
        finally:
            _setns(_HOME)
    finally:
        os.close(fd)


def _endpoint(text: str) -> tuple[str, str, int]:
    namespace, address, port = text.split("/")
    return namespace, address, int(port)


def _socket(namespace: str) -> socket.socket:
    with _inside(namespace):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


async def _relay(
    target: tuple[str, str, int], client: asyncio.StreamReader, back: asyncio.StreamWriter
) -> None:
    namespace, address, port = target
    sock = _socket(namespace)
    try:
        await asyncio.wait_for(
            asyncio.get_running_loop().sock_connect(sock, (address, port)), timeout=10
        )
    except (OSError, TimeoutError):
        sock.close()
        back.close()
        return
    reader, writer = await asyncio.open_connection(sock=sock)
    await asyncio.gather(_pipe(client, writer), _pipe(reader, back))


async def main(rules: list[str]) -> None:
    servers = []
    for rule in rules:
        listen, _, connect = rule.partition("=")
        namespace, address, port = _endpoint(listen)
        target = _endpoint(connect)
        sock = _socket(namespace)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(128)

        async def handle(
            reader: asyncio.StreamReader,
            writer: asyncio.StreamWriter,
            target: tuple[str, str, int] = target,
        ) -> None:
            await _relay(target, reader, writer)

        servers.append(await asyncio.start_server(handle, sock=sock))
    print("ready", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
