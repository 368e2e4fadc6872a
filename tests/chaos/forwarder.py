"""A TCP forwarder in a thread of the test process: listen on given addresses, relay each
connection to one upstream address (the test database server).

Workers in network namespaces reach the database through it, so the server needs no change
(it listens on 127.0.0.1 only, and its pg_hba.conf trusts that address only). The forwarder
keeps its upstream connections open while a namespace's link is down, as a real server does
while a partitioned client is silent: the server never learns of the cut.
"""

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, Final

CHUNK: Final = 64 * 1024
STOP_TIMEOUT: Final = 10.0


class Forwarder:
    """Relays TCP connections from its listening addresses to one upstream address."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()
        # Each relayed connection's pair of writers, by the port it was accepted on.
        self._pairs: dict[int, set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]]] = {}
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="taskmill-test-forwarder", daemon=True
        )
        self._thread.start()

    def listen(self, host: str, port: int = 0) -> int:
        """Listen on `host` (an address of this namespace), on `port` or a free one; return
        the port."""
        server = self._call(asyncio.start_server(self._relay, host, port))
        self._servers.append(server)
        listening: int = server.sockets[0].getsockname()[1]
        return listening

    def end_sessions(self, port: int) -> int:
        """Drop every connection accepted on `port` at once, as a database failover does.

        Both sides are reset: the server ends the sessions, and the client is told only by a
        reset, which is lost while its link is cut. Return how many connections were dropped.
        """
        return self._call(self._abort(port))

    async def _abort(self, port: int) -> int:
        pairs = self._pairs.pop(port, set())
        for pair in pairs:
            for writer in pair:
                writer.transport.abort()
        return len(pairs)

    def close(self) -> None:
        """Stop listening, close every relayed connection and end the thread."""
        if not self._thread.is_alive():
            return
        self._call(self._close_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STOP_TIMEOUT)
        self._loop.close()

    def _call[T](self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(STOP_TIMEOUT)

    async def _close_all(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.close()
        relays = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in relays:
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)
        # Only now: wait_closed() also waits for the servers' connections to end.
        for server in self._servers:
            await server.wait_closed()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self._writers.add(client_w)
        try:
            server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            await _close(client_w)
            self._writers.discard(client_w)
            return
        self._writers.add(server_w)
        pairs = self._pairs.setdefault(client_w.get_extra_info("sockname")[1], set())
        pairs.add((client_w, server_w))
        try:
            # Either direction ending ends both: a closed server session must reach the client
            # (as a real server's FIN would), and a client gone must free its server session.
            await asyncio.gather(_pipe(client_r, server_w), _pipe(server_r, client_w))
        finally:
            pairs.discard((client_w, server_w))
            for writer in (client_w, server_w):
                await _close(writer)
                self._writers.discard(writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
