"""The listening sockets evalhub serves HTTP on (the tracking server's, and its own OpenAI-compatible
server's) give every accepted connection TCP_NODELAY through asyncio, as uvicorn runs them: without it
an answer's body waits for the client's delayed ACK of its head (~40 ms on every kept-alive request)."""

from __future__ import annotations

import asyncio
import socket

from evalhub_server.runner import _bind
from evalhub_server.settings import ServerSettings


def _nodelay_of_an_accepted_connection(listening: socket.socket) -> int:
    """Accept one connection on ``listening`` with asyncio's server (what uvicorn uses) and read the
    accepted socket's TCP_NODELAY."""
    seen: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Probe, sock=listening)
        port = listening.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()

    asyncio.run(main())
    return seen[0]


def test_the_tracking_servers_connections_have_nodelay() -> None:
    sock, url = _bind(ServerSettings(db_url="sqlite://", host="127.0.0.1", port=0))
    assert url.startswith("http://127.0.0.1:")
    assert _nodelay_of_an_accepted_connection(sock) != 0


def test_a_socket_without_its_protocol_named_gets_no_nodelay() -> None:
    """The control: the socket evalhub used to make (protocol 0) leaves Nagle on, so the test above
    can tell the two apart."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    assert _nodelay_of_an_accepted_connection(sock) == 0
