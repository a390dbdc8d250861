"""A caller that talks to a sidecar's inbound port directly, with whatever certificate (or
none) the test gives it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import tempfile
from pathlib import Path

from mesh.authority import Svid


def client_context(bundle_pem: bytes, svid: Svid | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=bundle_pem.decode())
    context.check_hostname = False  # SPIFFE identities are URIs, not host names
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    if svid is not None:
        with tempfile.TemporaryDirectory() as directory:
            cert, key = Path(directory, "cert.pem"), Path(directory, "key.pem")
            cert.write_bytes(svid.certificate_pem)
            key.write_bytes(svid.private_key_pem)
            context.load_cert_chain(cert, key)
    return context


async def get_status(
    port: int, path: str, context: ssl.SSLContext | None, *, method: str = "GET"
) -> int:
    """The HTTP status the sidecar answers, or an OSError / ssl.SSLError if it refuses."""
    async with asyncio.timeout(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        try:
            writer.write(
                f"{method} {path} HTTP/1.1\r\nHost: mesh\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
            status_line = await reader.readline()
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
    if not status_line:
        raise ConnectionResetError("the sidecar closed the connection without answering")
    return int(status_line.split()[1])
