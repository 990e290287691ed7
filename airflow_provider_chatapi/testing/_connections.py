"""The client connections a stand-in gateway serves: which are open, how many it accepted."""

from __future__ import annotations

import contextlib
import socket
import threading

__all__ = ["Connections"]


class Connections:
    """The gateway's clients' TCP connections, counted under the gateway's lock.

    The request handler reports each connection opened (its ``setup``) and closed (its ``finish``: the
    client closed it, or the stand-in reset or hung up on it). A connection accepted while the gateway is
    not serving is hung up on at once.
    """

    def __init__(self, lock: threading.Lock) -> None:
        self._changed = threading.Condition(lock)
        self._open: set[socket.socket] = set()
        self._accepted = 0
        self._serving = False

    @property
    def open(self) -> int:
        with self._changed:
            return len(self._open)

    @property
    def accepted(self) -> int:
        with self._changed:
            return self._accepted

    def opened(self, connection: socket.socket) -> None:
        with self._changed:
            self._open.add(connection)
            self._accepted += 1
            serving = self._serving
        if not serving:  # accepted as the gateway stopped, after it hung up on the others
            _hang_up(connection)

    def closed(self, connection: socket.socket) -> None:
        with self._changed:
            self._open.discard(connection)
            self._changed.notify_all()

    def serve(self) -> None:
        with self._changed:
            self._serving = True

    def hang_up(self) -> None:
        """Stop serving: end every open connection from the server's side, and any accepted from now on."""
        with self._changed:
            self._serving = False
            connections = list(self._open)
        for connection in connections:
            _hang_up(connection)

    def forget_closed(self) -> None:
        """Count as accepted only the connections open now."""
        with self._changed:
            self._accepted = len(self._open)

    def wait_until_none_open(self, timeout: float) -> int:
        """Wait (on the condition that each close signals) until none is open, or ``timeout`` seconds;
        return how many are left open."""
        with self._changed:
            self._changed.wait_for(lambda: not self._open, timeout)
            return len(self._open)


def _hang_up(connection: socket.socket) -> None:
    """End a connection from the server's side: its handler's next read sees the end of it."""
    with contextlib.suppress(OSError):  # already closed, or reset by the client
        connection.shutdown(socket.SHUT_RDWR)
