"""A lean httpx transport for the measured job requests, built on the standard library's http.client.

httpx's default transport (httpcore and h11, pure Python) costs about 0.7 ms per request
on loopback, and every bit of that lands in an orchestrator's measured round trip; the
same exchange through ``http.client`` costs about 0.2 ms. The lanes' clients use this
transport; everything off the clock (discovery, posting, output checks) keeps httpx's.

Exceptions are mapped to httpx's, so callers cannot tell the difference. A kept-alive
connection that the server has closed is noticed before the request is sent, never by
sending a job twice.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import httpx

_ConnectionKey = tuple[str, str, int]


class _Body(httpx.SyncByteStream):
    def __init__(self, transport: StdlibTransport, key: _ConnectionKey, conn: http.client.HTTPConnection,
                 response: http.client.HTTPResponse) -> None:  # fmt: skip
        self._transport, self._key, self._conn, self._response = transport, key, conn, response

    def __iter__(self) -> Iterator[bytes]:
        try:
            while chunk := self._response.read1(65536):
                yield chunk
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out") from exc
        except http.client.IncompleteRead as exc:
            raise httpx.RemoteProtocolError(f"the connection closed mid-body ({exc!r})") from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc)) from exc
        if self._response.length:  # read1 ends quietly when the server closes early
            raise httpx.RemoteProtocolError(
                f"the connection closed with {self._response.length} bytes of the body missing"
            )

    def close(self) -> None:
        # At the end of a Content-Length body http.client leaves the socket open, as keep-alive wants.
        finished = self._response.isclosed() or self._response.length == 0
        self._response.close()
        if finished and not self._response.will_close:
            self._transport._release(self._key, self._conn)
        else:
            self._conn.close()  # a reply not read to its end leaves the connection unusable


class StdlibTransport(httpx.BaseTransport):
    """One kept-alive connection per host, reused only when the server has not closed it."""

    def __init__(self, *, verify: bool = True) -> None:
        self._context = ssl.create_default_context() if verify else ssl._create_unverified_context()
        self._idle: dict[_ConnectionKey, http.client.HTTPConnection] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        connect_timeout, read_timeout = _timeouts(request)
        conn = self._connection(key, connect_timeout)
        try:
            if conn.sock is None:
                conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(read_timeout)
        except TimeoutError as exc:
            conn.close()
            raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
        except OSError as exc:  # refused, unreachable, TLS verification
            conn.close()
            raise httpx.ConnectError(str(exc), request=request) from exc
        # Bytes go as they are; a streamed body (a multipart upload) goes piece by piece.
        body: Any = request.read() if isinstance(request.stream, httpx.ByteStream) else request.stream
        try:
            conn.request(request.method, url.raw_path.decode("ascii"), body=body, headers=dict(request.headers))
            response = conn.getresponse()
        except TimeoutError as exc:
            conn.close()
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except (http.client.RemoteDisconnected, http.client.BadStatusLine) as exc:
            conn.close()
            raise httpx.RemoteProtocolError(
                f"Server disconnected without sending a response ({exc})", request=request
            ) from exc
        except (BrokenPipeError, ConnectionResetError) as exc:
            conn.close()
            raise httpx.WriteError(str(exc), request=request) from exc
        except OSError as exc:
            conn.close()
            raise httpx.ReadError(str(exc), request=request) from exc
        return httpx.Response(
            response.status, headers=response.getheaders(), stream=_Body(self, key, conn, response), request=request
        )

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conn in idle.values():
            conn.close()

    def _connection(self, key: _ConnectionKey, timeout: float | None) -> http.client.HTTPConnection:
        with self._lock:
            conn = self._idle.pop(key, None)
        if conn is not None and conn.sock is not None and not _closed_by_peer(conn.sock):
            return conn
        if conn is not None:
            conn.close()
        scheme, host, port = key
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._context)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _release(self, key: _ConnectionKey, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            previous = self._idle.pop(key, None)
            self._idle[key] = conn
        if previous is not None:
            previous.close()


def _timeouts(request: httpx.Request) -> tuple[float | None, float | None]:
    timeouts = request.extensions.get("timeout") or {}
    connect, read = timeouts.get("connect"), timeouts.get("read")
    return (None if connect is None else float(connect)), (None if read is None else float(read))


def _closed_by_peer(sock: socket.socket) -> bool:
    # An idle connection is readable only if the server sent EOF (or stray bytes): drop it.
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)
