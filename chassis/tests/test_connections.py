"""A process closes every outbound connection it opened, once, at shutdown."""

from __future__ import annotations

import grpc

from chassis import ServiceSettings
from chassis.connections import IDLE_CONNECTION_SECONDS, Connections, http_session


async def test_closing_closes_every_session_and_channel_opened(
    settings: ServiceSettings,
) -> None:
    connections = Connections()
    sessions = [connections.http_session(), connections.http_session()]
    channel = connections.grpc_channel(["grpc://127.0.0.1:1"])
    connections.client_credentials(
        settings.model_copy(update={"upstreams": {"identity": ["http://127.0.0.1:1"]}}),
        client_id="orders",
        secret="s3cret",  # noqa: S106 - a test's made-up secret
        scopes=["payments:write"],
    )

    await connections.close()

    assert all(session.closed for session in sessions)
    assert channel.get_state() is grpc.ChannelConnectivity.SHUTDOWN


async def test_connections_can_be_opened_again_after_closing() -> None:
    connections = Connections()
    first = connections.http_session()
    await connections.close()

    second = connections.http_session()
    await connections.close()

    assert first.closed
    assert second.closed
    assert first is not second


async def test_a_pooled_connection_is_let_go_before_souks_servers_would_close_it() -> None:
    # A request written on a connection the server is closing fails, and a POST cannot be
    # retried (the gateway's 502 "orders dropped the request" under load): the client's idle
    # limit must end first. aiohttp's default (15 s) is longer than the servers' (5 s).
    servers_keep_alive = ServiceSettings.model_fields["keep_alive_timeout"].default
    session = http_session()
    try:
        assert session.connector is not None
        idle = session.connector._keepalive_timeout  # aiohttp has no public reader
        assert idle == IDLE_CONNECTION_SECONDS < servers_keep_alive
    finally:
        await session.close()
