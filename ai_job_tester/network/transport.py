"""A lean httpx transport for the measured job requests, built on the standard library's http.client.

httpx's default transport (httpcore and h11, pure Python) costs about 0.7 ms per request
on loopback, and every bit of that lands in an orchestrator's measured round trip; the
same exchange through ``http.client`` costs about 0.2 ms. The lanes' clients use this
transport; everything off the clock (discovery, posting, output checks) keeps httpx's.

Exceptions are mapped to httpx's, so callers cannot tell the difference. A kept-alive
connection that the server has closed is noticed before the request is sent, never by
sending a job twice. A reply that breaks HTTP (a garbage status line, too many or too long
headers, bad chunking) raises ``MalformedReply``, never a raw ``http.client`` error.

A request may carry a total deadline (``extensions["deadline"]``, a ``time.perf_counter()``
value): connect, sending, headers and body together must fit in it. Every blocking read
and write gets only the time left, so a peer that drips a byte every few seconds costs at
most the deadline, never the per-read timeout again and again.
"""

from __future__ import annotations

import http.client
import io
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpx

_ConnectionKey = tuple[str, str, int]


class MalformedReply(httpx.RemoteProtocolError):
    """The peer answered, but not in HTTP: a broken status line, headers, chunking or encoding."""


# What http.client raises for a reply it cannot parse (RemoteDisconnected, a subclass of
# BadStatusLine, is a closed connection instead and is caught before these).
_MALFORMED = (http.client.HTTPException, ValueError, UnicodeError)


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
            if isinstance(exc.__context__, ValueError):  # http.client's answer to a bad chunk-size line
                raise MalformedReply("the reply's chunked body is malformed (a bad chunk size)") from exc
            raise httpx.RemoteProtocolError(f"the connection closed mid-body ({exc!r})") from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc)) from exc
        except _MALFORMED as exc:  # a chunk-size or trailer line too long, and the like
            raise MalformedReply(f"the reply's body is malformed: {_describe(exc)}") from exc
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
        deadline: float | None = request.extensions.get("deadline")
        if deadline is not None:
            try:
                connect_timeout = _left(deadline, connect_timeout)
            except TimeoutError as exc:
                raise httpx.ReadTimeout(str(exc), request=request) from exc
        conn = self._connection(key, connect_timeout)
        try:
            if conn.sock is None:
                conn.timeout = connect_timeout
                conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(read_timeout if deadline is None else _left(deadline, read_timeout))
        except TimeoutError as exc:
            conn.close()
            raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
        except OSError as exc:  # refused, unreachable, TLS verification
            conn.close()
            raise httpx.ConnectError(str(exc), request=request) from exc
        # Bytes go as they are; a streamed body (a multipart upload) goes piece by piece.
        body: Any = request.read() if isinstance(request.stream, httpx.ByteStream) else request.stream
        # A kept-alive connection keeps its response class: set it for every request.
        conn.response_class = http.client.HTTPResponse if deadline is None else _deadline_response(deadline)
        if deadline is not None and not isinstance(body, bytes):
            body = _paced(body, conn.sock, deadline)
        try:
            conn.request(request.method, url.raw_path.decode("ascii"), body=body, headers=dict(request.headers))
            response = conn.getresponse()
        except TimeoutError as exc:
            conn.close()
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except http.client.RemoteDisconnected as exc:
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
        except _MALFORMED as exc:
            conn.close()
            raise MalformedReply(f"the reply is not valid HTTP: {_describe(exc)}", request=request) from exc
        # Header bytes go to httpx as they came (http.client decoded them as Latin-1): httpx
        # would encode str values as ASCII and fail on any byte above 127.
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.getheaders()]
        stream = _Body(self, key, conn, response)
        return httpx.Response(response.status, headers=headers, stream=stream, request=request)

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


def _left(deadline: float, timeout: float | None) -> float:
    """The time a blocking call may take: what is left of the deadline, within ``timeout``."""
    left = deadline - time.perf_counter()
    if left <= 0:
        raise TimeoutError("the job's deadline passed")
    return left if timeout is None else min(left, timeout)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"  # LineTooLong carries no line, but be safe


class _DeadlineReader(io.RawIOBase):
    """Reads the socket with, each time, only the time left before the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock, self._deadline = sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(_left(self._deadline, None))
        return self._sock.recv_into(buffer)


def _deadline_response(deadline: float) -> type[http.client.HTTPResponse]:
    class DeadlineResponse(http.client.HTTPResponse):
        def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
            super().__init__(sock, *args, **kwargs)
            self.fp.close()  # the socket stays open: http.client's connection owns it
            self.fp = io.BufferedReader(_DeadlineReader(sock, deadline), 65536)

    return DeadlineResponse


def _paced(body: Iterable[bytes], sock: socket.socket | None, deadline: float) -> Iterator[bytes]:
    """Hand out a streamed body's pieces, each write given only what is left of the deadline."""
    for piece in body:
        if sock is not None:
            sock.settimeout(_left(deadline, None))
        yield piece


def _timeouts(request: httpx.Request) -> tuple[float | None, float | None]:
    timeouts = request.extensions.get("timeout") or {}
    connect, read = timeouts.get("connect"), timeouts.get("read")
    return (None if connect is None else float(connect)), (None if read is None else float(read))


def _closed_by_peer(sock: socket.socket) -> bool:
    # An idle connection is readable only if the server sent EOF (or stray bytes): drop it.
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)
