"""The webhook the gateway asks which orchestrators exist (contract, section 3).

It sits on the critical path of every job, so an answer is a precomputed byte
string written in one ``send``: no JSON encoding and no logging per request. It
also counts the gateway's requests, which is the tester's only proof that a job
was routed through it.

That proof must not be forgeable from outside. With a token (``webhookToken``), only
``GET /orchestrators/<token>`` counts, compared in constant time; the gateway is
started with ``-orchWebhookUrl http://<tester>:<port>/orchestrators/<token>``. Any
other ``/orchestrators`` request gets the same list but is not counted (``uncounted``
says how many arrived, so the cycle can tell an operator whose gateway lacks the
token). Without a token every ``GET /orchestrators`` counts, and binding to an address
other than loopback logs a warning.

Whatever reaches the port is untrusted, so the server is bounded: a request head of
at most ``MAX_HEADERS`` lines of ``MAX_LINE`` bytes, read within ``HEAD_SECONDS`` of
its first byte; a body of at most ``MAX_BODY`` bytes (the gateway sends none); an idle
keep-alive connection kept ``IDLE_SECONDS`` once it made a counted request, else only
``HEAD_SECONDS`` (silent connections cannot hold the slots); at most
``MAX_CONNECTIONS`` open, and ``MAX_CONNECTIONS_PER_ADDRESS`` from one address. The time limits cost the hot path
two dictionary writes: one reaper thread shuts down the sockets past their deadline.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import io
import ipaddress
import json
import logging
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from ..errors import WebhookPortInUse

log = logging.getLogger("ai_job_tester")

PATH = "/orchestrators"
PATH_BYTES = PATH.encode()

MAX_LINE = 8192
MAX_HEADERS = 64
MAX_BODY = 4096
HEAD_SECONDS = 5.0
IDLE_SECONDS = 120.0
MAX_CONNECTIONS = 256
MAX_CONNECTIONS_PER_ADDRESS = 32
_REAP_EVERY = 0.25
_PATH_SLASH = PATH_BYTES + b"/"


def gateway_flag(port: int | str = "<port>") -> str:
    """The gateway flag, as an operator is told it (the token itself is never printed)."""
    return f"-orchWebhookUrl http://<tester>:{port}{PATH}/<webhookToken>"


def _response(addresses: Iterable[str]) -> bytes:
    body = json.dumps([{"address": uri} for uri in addresses], separators=(",", ":")).encode()
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    return head + body


def _refusal(status: str) -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()


_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nnot found\n"
_BAD_REQUEST = _refusal("400 Bad Request")
_TOO_LARGE = _refusal("413 Content Too Large")
_URI_TOO_LONG = _refusal("414 URI Too Long")
_HEADERS_TOO_LARGE = _refusal("431 Request Header Fields Too Large")
_UNAVAILABLE = _refusal("503 Service Unavailable")


class _Handler(socketserver.StreamRequestHandler):
    """A minimal, bounded HTTP/1.1 keep-alive loop.

    http.server's handler parses every header into an email message, which costs more
    than the whole answer; the gateway sends a plain GET, so reading lines is enough.
    """

    disable_nagle_algorithm = True
    server: _Server
    rfile: io.BufferedReader  # makefile("rb") with a buffer: it can peek

    def handle(self) -> None:
        deadlines, conn = self.server.deadlines, self.connection
        self.proven = False  # has this connection made a counted request?
        try:
            while True:
                # Only the gateway's connections are kept idle long (its Go client reuses them);
                # one that never sent a counted request gets no longer than a request head.
                deadlines[conn] = time.monotonic() + (IDLE_SECONDS if self.proven else HEAD_SECONDS)
                if not self.rfile.peek(1):  # the client closed, or the reaper did
                    return
                deadlines[conn] = time.monotonic() + HEAD_SECONDS  # from the request's first byte
                if not self._one_request():
                    return
        finally:
            deadlines.pop(conn, None)

    def _one_request(self) -> bool:
        request_line = self.rfile.readline(MAX_LINE + 1)
        if len(request_line) > MAX_LINE:
            return self._refuse(_URI_TOO_LONG)
        parts = request_line.split()
        if len(parts) != 3:
            return self._refuse(_BAD_REQUEST) if request_line.strip() else False
        method, target, version = parts
        keep_alive = version == b"HTTP/1.1"
        length = 0
        for _ in range(MAX_HEADERS + 1):
            header = self.rfile.readline(MAX_LINE + 1)
            if header in (b"\r\n", b"\n"):
                break
            if len(header) > MAX_LINE:
                return self._refuse(_HEADERS_TOO_LARGE)
            if not header.endswith(b"\n"):
                return False  # the client went away mid-head
            name, _, value = header.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"connection":
                keep_alive = value != b"close" and (keep_alive or value == b"keep-alive")
            elif name == b"content-length":
                if not value.isdigit():
                    return self._refuse(_BAD_REQUEST)
                if len(value) > 9 or int(value) > MAX_BODY:
                    return self._refuse(_TOO_LARGE)  # closed without reading what it claims to send
                length = int(value)
            elif name == b"transfer-encoding":
                return self._refuse(_BAD_REQUEST)  # a body of unknown size: the gateway sends none
        else:
            return self._refuse(_HEADERS_TOO_LARGE)
        if length and len(self.rfile.read(length)) < length:
            return False
        path = target.split(b"?", 1)[0]
        if method == b"GET" and (path == PATH_BYTES or path.startswith(_PATH_SLASH)):
            server = self.server
            if hmac.compare_digest(path, server.counted_path):
                server.hits.add()
                self.proven = True
            else:
                server.uncounted.add()
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("webhook: a request from %s without the webhook token was answered, not counted",
                              self.client_address[0])  # fmt: skip
            self.wfile.write(server.answer)
        else:
            self.wfile.write(_NOT_FOUND)
        return keep_alive

    def _refuse(self, answer: bytes) -> bool:
        self.wfile.write(answer)
        return False


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
    request_queue_size = 128  # a burst of connections waits in the backlog instead of being reset
    answer: bytes
    counted_path: bytes
    hits: _Counter
    uncounted: _Counter

    def __init__(self, address: tuple[str, int]) -> None:
        self.deadlines: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}
        super().__init__(address, _Handler, bind_and_activate=True)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Refuse a connection over the caps at once, so a flood cannot starve the gateway."""
        host = client_address[0]
        with self._lock:
            if sum(self._open.values()) < MAX_CONNECTIONS and self._open.get(host, 0) < MAX_CONNECTIONS_PER_ADDRESS:
                self._open[host] = self._open.get(host, 0) + 1
                return True
        with contextlib.suppress(OSError):
            request.send(_UNAVAILABLE, socket.MSG_DONTWAIT)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("webhook: refused a connection from %s: too many open", host)
        return False

    def process_request(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release(client_address[0])  # no thread was started to release it
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(client_address[0])

    def _release(self, host: str) -> None:
        with self._lock:
            left = self._open.get(host, 0) - 1
            if left > 0:
                self._open[host] = left
            else:
                self._open.pop(host, None)

    def reap(self, stop: threading.Event) -> None:
        """Shut down every connection past its deadline until ``stop`` is set, then all of them."""
        while not stop.wait(_REAP_EVERY):
            now = time.monotonic()
            for conn, deadline in self.deadlines.copy().items():
                if deadline < now and self.deadlines.pop(conn, None) is not None:
                    _shut(conn)
        for conn in self.deadlines.copy():
            _shut(conn)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up, or is shut down by the reaper, is normal; anything else is logged."""
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            log.warning("webhook: error while answering %s: %r", client_address, error,
                        exc_info=log.isEnabledFor(logging.DEBUG))  # fmt: skip


def _shut(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)  # the handler's blocked read returns and its thread ends


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Webhook:
    """A threaded HTTP server listing the orchestrators the gateway may use.

    >>> with Webhook.bind("127.0.0.1", 0, token="0123456789abcdef") as hook:
    ...     hook.show(["https://orch:8935"])
    """

    def __init__(self, server: _Server) -> None:
        self._server = server
        # A short poll keeps close() quick: shutdown() waits for the loop's next turn.
        self._thread = threading.Thread(target=server.serve_forever, args=(0.02,), name="webhook", daemon=True)
        self._stop_reaper = threading.Event()
        self._reaper = threading.Thread(
            target=server.reap, args=(self._stop_reaper,), name="webhook-reaper", daemon=True
        )
        self._started = False

    @classmethod
    def bind(cls, host: str, port: int, *, token: str | None = None) -> Webhook:
        """Bind the address now, so a busy port is reported before any discovery.

        With ``token`` only ``GET /orchestrators/<token>`` counts as the gateway's request.
        """
        try:
            server = _Server((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise WebhookPortInUse(
                    f"webhook port {port} on {host} is already in use: stop the other process "
                    "or set internalWebServerPort (and the gateway's -orchWebhookUrl) to a free port"
                ) from None
            raise WebhookPortInUse(f"cannot open the webhook on {host}:{port}: {exc.strerror}") from None
        server.answer = _response(())
        server.hits = _Counter()
        server.uncounted = _Counter()
        hook = cls(server)
        hook.use_token(token)
        if token is None and not _is_loopback(host):
            log.warning(
                "webhook on %s:%s has no webhookToken: anything that can reach it can forge proof of routing; "
                "set webhookToken (or WEBHOOK_TOKEN) and start the gateway with %s",
                host, hook.port, gateway_flag(hook.port),
            )  # fmt: skip
        return hook

    def use_token(self, token: str | None) -> None:
        """Count only ``GET /orchestrators/<token>`` from now on (every ``/orchestrators`` when None)."""
        self._server.counted_path = PATH_BYTES + (b"/" + token.encode() if token else b"")

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def requests(self) -> int:
        """How many times the gateway has asked so far (requests with the token, when there is one)."""
        return self._server.hits.value

    @property
    def uncounted(self) -> int:
        """How many ``/orchestrators`` requests were answered without counting: no token, or a wrong one."""
        return self._server.uncounted.value

    def uncounted_hint(self) -> str | None:
        """Why jobs may come out unrouted although something asked the webhook; None when nothing did."""
        count = self.uncounted
        if not count:
            return None
        return (
            f"{count} webhook request(s) arrived without the webhook token and were not counted: "
            f"start the gateway with {gateway_flag(self.port)}"
        )

    def show(self, service_uris: Iterable[str]) -> None:
        """List exactly these orchestrators from now on (one reference swap, no lock)."""
        self._server.answer = _response(service_uris)

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()
            self._reaper.start()

    def close(self) -> None:
        """Stop serving, drop open connections and release the port; safe to call twice."""
        if self._started:
            self._server.shutdown()
            self._thread.join()
            self._stop_reaper.set()
            self._reaper.join()
            self._started = False
        self._server.server_close()

    def __enter__(self) -> Webhook:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
