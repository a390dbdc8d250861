"""Reaching an instance that listens on a Unix socket (the mesh on): the supervisor's probes
and the operator's HTTP clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from souk import instances
from souk.health import http_status, probe_health
from souk.state import Health, InstanceRecord, InstanceState


@asynccontextmanager
async def http_on_socket(path: Path, body: bytes) -> AsyncIterator[list[bytes]]:
    """A one-line HTTP server on a Unix socket; yields the request heads it received."""
    seen: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(answer, path=str(path))
    try:
        yield seen
    finally:
        server.close()
        await server.wait_closed()


def _record(instance: str, socket: Path | None, port: int = 1) -> InstanceRecord:
    return InstanceRecord(
        service=instance.rsplit("-", 1)[0],
        instance=instance,
        pid=None,
        port=port,
        url=f"http://{instance}" if socket else f"http://127.0.0.1:{port}",
        state=InstanceState.READY,
        health=Health.OK,
        restarts=0,
        started_at=None,
        log="",
        socket=str(socket) if socket else None,
    )


async def test_a_probe_reaches_an_instance_on_its_socket(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    async with http_on_socket(path, b"ok") as seen:
        assert await http_status(0, "/readyz", socket=str(path)) == 200
        assert await probe_health(0, socket=str(path)) is Health.OK
    assert seen[0].startswith(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n")
    # Gone: down, not an error.
    assert await http_status(0, "/readyz", socket=str(path)) is None


async def test_a_client_sends_an_instances_url_to_its_socket_and_others_over_tcp(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "a.sock", tmp_path / "b.sock"
    records = [_record("catalog-1", first), _record("catalog-2", second), _record("gw-1", None)]
    async with (
        http_on_socket(first, b"one") as one,
        http_on_socket(second, b"two") as two,
        instances.async_client(records, timeout=5) as client,
    ):
        assert (await client.get("http://catalog-1/metrics")).text == "one"
        assert (await client.get("http://catalog-2/internal/dead-letters")).text == "two"
        with instances.client(records, timeout=5) as sync_client:
            answer = await asyncio.to_thread(sync_client.get, "http://catalog-2/readyz")
        assert answer.text == "two"
    assert one[0].startswith(b"GET /metrics ")
    assert two[0].startswith(b"GET /internal/dead-letters ")
    assert two[1].startswith(b"GET /readyz ")
