"""The webhook the gateway asks which orchestrators exist (contract, section 3).

It sits on the critical path of every job, so an answer is a precomputed byte
string written in one ``send``: no JSON encoding and no logging per request. It
also counts the gateway's requests, which is the tester's only proof that a job
was routed through it.
"""

from __future__ import annotations

import errno
import json
import logging
import socketserver
import sys
import threading
from collections.abc import Iterable
from types import TracebackType

from ..errors import WebhookPortInUse

log = logging.getLogger("ai_job_tester")

PATH = "/orchestrators"
PATH_BYTES = PATH.encode()


def _response(addresses: Iterable[str]) -> bytes:
    body = json.dumps([{"address": uri} for uri in addresses], separators=(",", ":")).encode()
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    return head + body


_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nnot found\n"
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_MAX_LINE = 8192


class _Handler(socketserver.StreamRequestHandler):
    """A minimal HTTP/1.1 keep-alive loop.

    http.server's handler parses every header into an email message, which costs more
    than the whole answer; the gateway sends a plain GET, so reading lines is enough.
    """

    disable_nagle_algorithm = True
    server: _Server

    def handle(self) -> None:
        while self._one_request():
            pass

    def _one_request(self) -> bool:
        request_line = self.rfile.readline(_MAX_LINE)
        parts = request_line.split()
        if len(parts) != 3:
            if request_line.strip():
                self.wfile.write(_BAD_REQUEST)
            return False
        method, target, version = parts
        keep_alive = version == b"HTTP/1.1"
        length = 0
        while (header := self.rfile.readline(_MAX_LINE)) not in (b"\r\n", b"\n", b""):
            name, _, value = header.partition(b":")
            name = name.strip().lower()
            if name == b"connection":
                keep_alive = value.strip().lower() != b"close" and (
                    keep_alive or value.strip().lower() == b"keep-alive"
                )
            elif name == b"content-length" and value.strip().isdigit():
                length = int(value)
        if length:
            self.rfile.read(length)
        if method == b"GET" and target.split(b"?", 1)[0] == PATH_BYTES:
            self.server.hits.add()
            self.wfile.write(self.server.answer)
        else:
            self.wfile.write(_NOT_FOUND)
        return keep_alive


class _Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def add(self) -> None:
        with self._lock:
            self._value += 1

    @property
    def value(self) -> int:
        with self._lock:
            return self._value


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True  # an idle keep-alive connection must not hold up shutdown
    allow_reuse_address = True
    answer: bytes
    hits: _Counter

    def handle_error(self, request: object, client_address: object) -> None:
        """A gateway that hangs up mid-answer is normal; anything else is logged, never printed raw."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            error = sys.exc_info()[1]
            log.warning("webhook: error while answering %s: %r", client_address, error,
                        exc_info=log.isEnabledFor(logging.DEBUG))  # fmt: skip


class Webhook:
    """A threaded HTTP server listing the orchestrators the gateway may use.

    >>> with Webhook.bind("127.0.0.1", 0) as hook:
    ...     hook.show(["https://orch:8935"])
    """

    def __init__(self, server: _Server) -> None:
        self._server = server
        # A short poll keeps close() quick: shutdown() waits for the loop's next turn.
        self._thread = threading.Thread(target=server.serve_forever, args=(0.02,), name="webhook", daemon=True)
        self._started = False

    @classmethod
    def bind(cls, host: str, port: int) -> Webhook:
        """Bind the address now, so a busy port is reported before any discovery."""
        try:
            server = _Server((host, port), _Handler, bind_and_activate=True)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise WebhookPortInUse(
                    f"webhook port {port} on {host} is already in use: stop the other process "
                    "or set internalWebServerPort (and the gateway's -orchWebhookUrl) to a free port"
                ) from None
            raise WebhookPortInUse(f"cannot open the webhook on {host}:{port}: {exc.strerror}") from None
        server.answer = _response(())
        server.hits = _Counter()
        return cls(server)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def requests(self) -> int:
        """How many times the gateway has asked so far."""
        return self._server.hits.value

    def show(self, service_uris: Iterable[str]) -> None:
        """List exactly these orchestrators from now on (one reference swap, no lock)."""
        self._server.answer = _response(service_uris)

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._started:
            self._server.shutdown()
            self._thread.join()
            self._started = False
        self._server.server_close()

    def __enter__(self) -> Webhook:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
