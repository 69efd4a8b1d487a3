"""Small helpers shared by the simulated servers: a quiet handler and a server thread."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, overload


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler that logs nothing and replies in one write."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    arrived_at: float | None = None

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        if _stamp_arrivals(self.connection):
            self.rfile.close()  # the makefile reader; the socket stays open
            self.rfile = io.BufferedReader(_ArrivalReader(self.connection, self), 65536)

    def handle_one_request(self) -> None:
        self.arrived_at = None  # set by the next request's first bytes
        super().handle_one_request()

    def arrival(self) -> float:
        """When this request's first bytes reached the socket, on ``perf_counter``.

        On Linux it is the kernel's receive stamp, so time this (simulated) server waits for
        its interpreter counts as its own service time, not as the client's.
        """
        return self.arrived_at if self.arrived_at is not None else time.perf_counter()

    @overload
    def read_body(self) -> bytes: ...

    @overload
    def read_body(self, limit: int) -> bytes | None: ...

    def read_body(self, limit: int | None = None) -> bytes | None:
        """The whole body; None once it passes ``limit`` bytes (the rest is left unread)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked(limit)
        length = int(self.headers.get("Content-Length") or 0)
        if limit is not None and length > limit:
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self, limit: int | None) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            total += size
            if limit is not None and total > limit:
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def reply(self, status: int, body: bytes = b"", content_type: str | None = "application/json") -> None:
        """One write; ``content_type`` None sends no Content-Type, as Go's empty 200 does."""
        reason = self.responses.get(status, ("",))[0]
        kind = "" if content_type is None else f"Content-Type: {content_type}\r\n"
        head = f"HTTP/1.1 {status} {reason}\r\n{kind}Content-Length: {len(body)}\r\n\r\n".encode()
        self.wfile.write(head + body)

    def reply_chunked(self, pieces: list[bytes], content_type: str, interval: float) -> None:
        """Stream a 200 reply piece by piece, as the gateway streams an LLM's tokens."""
        self.wfile.write(
            f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        for piece in pieces:
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            time.sleep(interval)
        self.wfile.write(b"0\r\n\r\n")

    def reply_json(self, status: int, data: Any) -> None:
        self.reply(status, json.dumps(data).encode())

    def reply_error(self, status: int, message: str) -> None:
        self.reply_json(status, {"error": {"message": message}})

    def drop(self) -> None:
        """Close the connection without any reply, as a panicking gateway does."""
        self.close_connection = True


_SO_TIMESTAMPNS = 35  # Linux (asm-generic); the socket module does not name it
_TIMESPEC = struct.Struct("@ll")


def _stamp_arrivals(sock: Any) -> bool:
    if sys.platform != "linux" or not isinstance(sock, socket.socket) or not hasattr(socket, "CMSG_SPACE"):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


class _ArrivalReader(io.RawIOBase):
    def __init__(self, sock: socket.socket, handler: QuietHandler) -> None:
        self._sock, self._handler = sock, handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count, ancillary, _, _ = self._sock.recvmsg_into([buffer], socket.CMSG_SPACE(_TIMESPEC.size))
        if count and self._handler.arrived_at is None:
            now = time.perf_counter()
            arrived = now
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(data)
                    ago = time.time() - (seconds + nanoseconds / 1e9)
                    arrived = now - ago if 0 <= ago < 60 else now
            self._handler.arrived_at = arrived
        return count


class _Server(ThreadingHTTPServer):
    """Remembers open connections so that stopping it really cuts clients off, as a crash would."""

    daemon_threads = True
    allow_reuse_address = True  # a restarted simulated service takes its old port back

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a tester's abandoned job) is normal here, not worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def cut_connections(self) -> None:
        with self._connections_lock:
            for connection in list(self.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class ServerThread:
    """Serves one handler class on 127.0.0.1 with an ephemeral port, in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: object, port: int = 0) -> None:
        self.server = _Server(("127.0.0.1", port), handler)
        self.server.owner = owner  # type: ignore[attr-defined]
        # A short poll keeps stop() quick: shutdown() waits for the loop's next turn.
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join()
        self.server.server_close()
        self.server.cut_connections()
