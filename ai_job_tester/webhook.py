"""The webhook the gateway asks which orchestrators exist (contract, section 3).

It sits on the critical path of every job, so an answer is a precomputed byte
string written in one ``send``: no JSON encoding, no logging, no lock on the way
out. It also counts the gateway's requests, which is the tester's only proof that a
job was routed through it.
"""

from __future__ import annotations

import errno
import json
import socket
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from .errors import WebhookPortInUse

PATH = "/orchestrators"


def _response(addresses: Iterable[str]) -> bytes:
    body = json.dumps([{"address": uri} for uri in addresses], separators=(",", ":")).encode()
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    return head + body


_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nnot found\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the gateway's Go client expects
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == PATH:
            self.server.hits.add()
            self.wfile.write(self.server.answer)
        else:
            self.wfile.write(_NOT_FOUND)

    def log_message(self, format: str, *args: object) -> None:
        """Stay silent: a log line per request would sit on every job's critical path."""


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # an idle keep-alive connection must not hold up shutdown
    answer: bytes
    hits: _Counter


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
    def url(self) -> str:
        host = self._server.server_address[0]
        if host in ("0.0.0.0", ""):
            host = socket.gethostname()
        return f"http://{host}:{self.port}{PATH}"

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
