"""A TCP proxy whose connections a test can cut, to break a worker's connection for real.

Three ways to break the path (:meth:`CuttableProxy.heal` ends the last two):

- :meth:`~CuttableProxy.cut`: drop every open connection at once; new ones are taken.
- :meth:`~CuttableProxy.refuse`: drop every open connection and refuse new ones (the
  listening socket stops listening, so a connect gets ECONNREFUSED; it keeps the port).
- :meth:`~CuttableProxy.blackhole`: what a real network partition looks like. Nothing is
  forwarded either way and nothing is closed: bytes (and the ends of connections) sent
  meanwhile are held, as TCP holds unacknowledged segments, and delivered after the heal
  unless an endpoint gave up first. New connections are accepted (the kernel completes the
  handshake) but hang the same way.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


class _Pair:
    """A client connection and its upstream connection."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.sockets = (client, upstream)
        self.dropped = False


class CuttableProxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.target_port = target_port
        self.listener = socket.create_server((host, 0))
        self.port = int(self.listener.getsockname()[1])
        self.state = "open"  # open | refusing | blackhole
        self.accepted = threading.Semaphore(0)  # released for each connection forwarded
        self.held = bytearray()  # what the current blackhole swallowed (see wait_held)
        self._pairs: list[_Pair] = []
        self._cond = threading.Condition()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ forwarding
    def _accept(self) -> None:
        while True:
            listener = self.listener
            try:
                client, _ = listener.accept()
            except OSError:
                with self._cond:  # refusing (the listener stopped listening) or closed
                    self._cond.wait_for(lambda old=listener: self._closed or self.listener is not old)
                    if self._closed:
                        return
                continue
            try:
                upstream = socket.create_connection((self.host, self.target_port))
            except OSError:  # the target is down: the client sees its connection end
                client.close()
                continue
            pair = _Pair(client, upstream)
            with self._cond:
                self._pairs.append(pair)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(pair, a, b), daemon=True).start()
            self.accepted.release()

    def _flowing(self, pair: _Pair) -> bool:
        """Wait while a partition holds this connection; False once it was dropped."""
        with self._cond:
            self._cond.wait_for(lambda: pair.dropped or self.state != "blackhole" or self._closed)
            return not pair.dropped

    def _pipe(self, pair: _Pair, src: socket.socket, dst: socket.socket) -> None:
        try:
            while self._flowing(pair):
                data = src.recv(65536)
                if data and self.state == "blackhole":
                    with self._cond:  # bytes that went into the partition
                        self.held += data
                        self._cond.notify_all()
                # a partition that began while we waited holds what was read, its end too
                if not self._flowing(pair):
                    return
                if not data:
                    break
                dst.sendall(data)
            else:
                return
        except OSError:
            if not self._flowing(pair):
                return
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ------------------------------------------------------------------ breaking the path
    def cut(self) -> None:
        """Drop every open connection (the listener stays, so clients can reconnect)."""
        with self._cond:
            pairs = self._drop_all()
        self._close(pairs)

    def _drop_all(self) -> list[_Pair]:
        # under the lock: a pipe thread woken by the same change must already see its pair
        # dropped, or it would deliver what a blackhole held before the drop
        pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.dropped = True
        self._cond.notify_all()
        return pairs

    @staticmethod
    def _close(pairs: list[_Pair]) -> None:
        for pair in pairs:
            for s in pair.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def refuse(self) -> None:
        """Drop every open connection and refuse new ones until :meth:`heal`."""
        with self._cond:
            if self.state == "refusing":
                return
            self.state = "refusing"
            # a listening socket that is shut down stops listening but keeps its port
            self.listener.shutdown(socket.SHUT_RD)
            pairs = self._drop_all()
        self._close(pairs)

    def blackhole(self) -> None:
        """Forward nothing and close nothing until :meth:`heal` (a network partition)."""
        with self._cond:
            if self.state == "refusing":
                self._listen_again()
            self.held = bytearray()
            self.state = "blackhole"
            self._cond.notify_all()

    def wait_held(self, needle: bytes, timeout: float = 60) -> bool:
        """Wait until the blackhole has swallowed bytes containing ``needle`` (a WebSocket
        frame from the server is not masked: a task id in it reads as it is)."""
        with self._cond:
            return self._cond.wait_for(lambda: needle in self.held, timeout)

    def heal(self) -> None:
        """Forward again: held bytes are delivered, new connections taken."""
        with self._cond:
            if self.state == "refusing":
                self._listen_again()
            self.state = "open"
            self._cond.notify_all()

    @contextlib.contextmanager
    def partitioned(self, how: str = "blackhole") -> Iterator[None]:
        """``with proxy.partitioned("blackhole" | "refuse"): ...``, healed on the way out."""
        {"blackhole": self.blackhole, "refuse": self.refuse}[how]()
        try:
            yield
        finally:
            self.heal()

    def _listen_again(self) -> None:
        # the old socket still holds the port, so nobody can take it meanwhile
        new = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        new.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        new.bind((self.host, self.port))
        new.listen()
        old, self.listener = self.listener, new
        old.close()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self.state = "open"
            self._cond.notify_all()
            try:
                self.listener.shutdown(socket.SHUT_RD)  # wakes the accepting thread
            except OSError:
                pass
            self.listener.close()
            pairs = self._drop_all()
        self._close(pairs)
