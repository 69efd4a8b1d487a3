"""A lean httpx transport for the measured job requests, built on the standard library's http.client.

httpx's default transport (httpcore and h11, pure Python) costs about 0.7 ms per request
on loopback, and every bit of that lands in an orchestrator's measured round trip; the
same exchange through ``http.client`` costs about 0.2 ms. The lanes' clients use this
transport; everything off the clock (discovery, posting, output checks) keeps httpx's.

Exceptions are mapped to httpx's, so callers cannot tell the difference. A kept-alive
connection that the server has closed is noticed before the request is sent, never by
sending a job twice. A reply that breaks HTTP (a garbage status line, too many or too long
headers, a header line with no colon, a Content-Length that is not one whole number, a
transfer coding other than chunked, bad chunking) raises ``MalformedReply``, never a raw
``http.client`` error: http.client would guess around the framing ones and read the body
as something it is not.

A request may carry a ``WireClock`` (``extensions["wire_clock"]``): the transport stamps it
when the request's first bytes go to the kernel and whenever reply bytes arrive. On Linux,
over plain TCP, both are the kernel's own timestamps (a ``SO_TIMESTAMPING`` transmit stamp
of the first segment, ``SO_TIMESTAMPNS`` receive stamps), so time the interpreter spends
elsewhere (another lane holding the GIL) stays out of the measurement; elsewhere, and over
TLS, they are taken right before the send and as the bytes are read.

A request may carry a total deadline (``extensions["deadline"]``, a ``time.perf_counter()``
value): connect, sending, headers and body together must fit in it. Every blocking read
and write gets only the time left, so a peer that drips a byte every few seconds costs at
most the deadline, never the per-read timeout again and again.
"""

from __future__ import annotations

import contextlib
import email.errors
import http.client
import io
import select
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpx

_ConnectionKey = tuple[str, str, int]

# Linux's SO_TIMESTAMPNS (asm-generic value; the socket module does not name it): each
# recvmsg carries the kernel's CLOCK_REALTIME stamp of the last packet it read.
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@ll")
# Room for SCM_TIMESTAMPNS and, should the socket report them too, SCM_TIMESTAMPING's three stamps.
_ANCILLARY_SIZE = (
    socket.CMSG_SPACE(_TIMESPEC.size) + socket.CMSG_SPACE(3 * _TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
)
# SO_TIMESTAMPING asks for transmit stamps: the first request bytes' entry into the kernel's
# packet scheduler (TX_SCHED) and their hand-over to the device (TX_SOFTWARE), reported as
# software stamps only (SOFTWARE | OPT_TSONLY), for the first send of each request alone.
_SO_TIMESTAMPING = 37
_TX_STAMPS = struct.pack("@I", (1 << 1) | (1 << 8))  # SOF_TIMESTAMPING_TX_SOFTWARE | TX_SCHED
_TX_REPORTING = (1 << 4) | (1 << 11)  # SOF_TIMESTAMPING_SOFTWARE | OPT_TSONLY
_ERRQUEUE_ANCILLARY = 512
_STAMPED_BYTES = 1200  # within one TCP segment on any usual path (MSS 1220 and up)


class WireClock:
    """When the request's first byte went to the kernel and the reply's latest bytes arrived, on ``perf_counter``."""

    __slots__ = ("first_sent", "kernel_sent", "kernel_stamped", "last_received", "sent_stamp_pending")

    def __init__(self) -> None:
        self.first_sent: float | None = None
        self.last_received: float | None = None
        self.kernel_stamped = False  # whether last_received came from the kernel
        self.kernel_sent = False  # whether first_sent came from the kernel
        self.sent_stamp_pending = False  # the kernel was asked for a transmit stamp not yet read

    def sending(self) -> None:
        if self.first_sent is None:
            self.first_sent = time.perf_counter()

    def sent_by_kernel(self, kernel_ns: int | None) -> None:
        """Move the start to the kernel's transmit stamp: a wait for the interpreter between
        the user-space stamp and the system call (another lane) is then left out too."""
        self.sent_stamp_pending = False
        if kernel_ns is None or self.first_sent is None:
            return
        now = time.perf_counter()
        sent = now - (time.time_ns() - kernel_ns) / 1e9
        if self.first_sent <= sent <= now:
            self.first_sent, self.kernel_sent = sent, True

    def received(self, kernel_ns: int | None) -> None:
        now = time.perf_counter()
        if kernel_ns is not None:
            # How long ago the kernel stamped the packet, on its own (wall) clock, moved onto perf_counter.
            ago = (time.time_ns() - kernel_ns) / 1e9
            arrived = now - ago
            if 0 <= ago < 60 and (self.first_sent is None or arrived >= self.first_sent):
                self.last_received, self.kernel_stamped = arrived, True
                return
        self.last_received, self.kernel_stamped = now, False

    def round_trip(self) -> float | None:
        if self.first_sent is None or self.last_received is None:
            return None
        return self.last_received - self.first_sent


class MalformedReply(httpx.RemoteProtocolError):
    """The peer answered, but not in HTTP: a broken status line, headers, chunking or encoding."""


# What http.client raises for a reply it cannot parse (RemoteDisconnected, a subclass of
# BadStatusLine, is a closed connection instead and is caught before these).
_MALFORMED = (http.client.HTTPException, ValueError, UnicodeError)

# The defects the email parser records, and parses on through, for a header block that is
# not one: a line with no colon (the lines from there on become a "body" and are lost).
_HEADER_DEFECTS = (email.errors.MissingHeaderBodySeparatorDefect, email.errors.FirstHeaderLineIsContinuationDefect)


class _BadFraming(http.client.HTTPException):
    """Headers that parse, but leave where the body ends, or what it is, to a guess."""


class _CheckedResponse(http.client.HTTPResponse):
    """http.client's response, refusing the framing that it would otherwise read leniently."""

    def begin(self) -> None:
        super().begin()
        problem = _framing_problem(self.msg)
        if problem is not None:
            raise _BadFraming(problem)


def _framing_problem(headers: http.client.HTTPMessage) -> str | None:
    if any(isinstance(defect, _HEADER_DEFECTS) for defect in headers.defects) or headers.get_payload():
        return "a header line has no colon"
    lengths = {value.strip() for value in headers.get_all("content-length") or ()}
    # int() would take "+5" and "5_0", and http.client reads "5, 5" as no length at all (to the
    # close): a Content-Length here is digits, the same each time it is given.
    if lengths and (len(lengths) > 1 or not all(length.isascii() and length.isdigit() for length in lengths)):
        return f"the Content-Length is not one whole number ({_describe_values(headers, 'content-length')})"
    codings = [
        part.strip().lower() for value in headers.get_all("transfer-encoding") or () for part in value.split(",")
    ]
    if codings and codings != ["chunked"]:
        return f"the Transfer-Encoding is not chunked alone ({_describe_values(headers, 'transfer-encoding')})"
    return None


def _describe_values(headers: http.client.HTTPMessage, name: str) -> str:
    text = ", ".join(repr(value) for value in headers.get_all(name) or ())
    return text if len(text) <= 120 else text[:119] + "…"


class _Body(httpx.SyncByteStream):
    def __init__(self, transport: StdlibTransport, key: _ConnectionKey, conn: _Connection | _TlsConnection,
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
        if finished and self._conn.kernel_stamps and self._conn.sock is not None:
            _sent_stamp(self._conn.sock)  # a late stamp left queued would look like a close to the idle check
        if finished and not self._response.will_close:
            self._transport._release(self._key, self._conn)
        else:
            self._conn.close()  # a reply not read to its end leaves the connection unusable


class _Connection(http.client.HTTPConnection):
    """Stamps the clock before the first byte goes out, and asks the kernel to stamp arrivals."""

    clock: WireClock | None = None
    kernel_stamps = False
    kernel_stamps_tx = False

    def connect(self) -> None:
        super().connect()
        self.kernel_stamps = _enable_kernel_stamps(self.sock)
        self.kernel_stamps_tx = self.kernel_stamps

    def send(self, data: Any) -> None:
        clock = self.clock
        if clock is None or clock.first_sent is not None:
            super().send(data)
            return
        clock.sending()
        if not (self.kernel_stamps_tx and self.sock is not None and isinstance(data, bytes | bytearray)):
            super().send(data)
            return
        try:
            # TCP stamps the LAST byte of a stamped send: stamp at most one segment's worth, so a
            # large first send (headers with a big JSON body) cannot move the start past its own
            # upload. Not the first byte alone: the interpreter may pass to another lane between
            # two sends, and that wait would delay the rest of the request inside the clock.
            sent = self.sock.sendmsg([data[:_STAMPED_BYTES]], [(socket.SOL_SOCKET, _SO_TIMESTAMPING, _TX_STAMPS)])
        except TimeoutError:
            raise
        except OSError:
            # A kernel or sandbox that refuses the stamp request (nothing was sent): send plainly
            # from now on. A broken connection raises again from the plain send, as it should.
            self.kernel_stamps_tx = False
            super().send(data)
            return
        clock.sent_stamp_pending = True
        if sent < len(data):
            self.sock.sendall(memoryview(data)[sent:])


class _TlsConnection(http.client.HTTPSConnection):
    clock: WireClock | None = None
    kernel_stamps = False  # an SSL socket has no recvmsg: arrivals are stamped as they are read

    def send(self, data: Any) -> None:
        if self.clock is not None:
            self.clock.sending()
        super().send(data)


def _enable_kernel_stamps(sock: socket.socket | None) -> bool:
    if sys.platform != "linux" or sock is None or not _ANCILLARY_SIZE:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    with contextlib.suppress(OSError):  # without it, the start stays the user-space stamp
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPING, _TX_REPORTING)
    return True


def _sent_stamp(sock: socket.socket) -> int | None:
    """Drain the socket's error queue of transmit stamps; return the earliest, in ns of wall clock."""
    earliest: int | None = None
    timeout = sock.gettimeout()
    sock.settimeout(0.0)  # with a timeout, Python would first wait for the socket to be readable
    try:
        for _ in range(8):
            try:
                _, ancillary, _, _ = sock.recvmsg(0, _ERRQUEUE_ANCILLARY, socket.MSG_ERRQUEUE)
            except OSError:  # BlockingIOError: the queue is empty
                break
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPING and len(data) >= _TIMESPEC.size:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(data)
                    stamp = int(seconds) * 1_000_000_000 + int(nanoseconds)
                    if stamp and (earliest is None or stamp < earliest):
                        earliest = stamp
    finally:
        sock.settimeout(timeout)
    return earliest


class StdlibTransport(httpx.BaseTransport):
    """One kept-alive connection per host, reused only when the server has not closed it."""

    def __init__(self, *, verify: bool = True) -> None:
        self._verify = verify
        self._tls: ssl.SSLContext | None = None  # made on the first https connection: loading CAs takes ~50 ms
        self._idle: dict[_ConnectionKey, _Connection | _TlsConnection] = {}
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
        # A kept-alive connection keeps its clock and response class: set them for every request.
        clock: WireClock | None = request.extensions.get("wire_clock")
        conn.clock = clock
        plain = deadline is None and clock is None
        conn.response_class = _CheckedResponse if plain else _wire_response(deadline, clock, kernel=conn.kernel_stamps)
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

    def _connection(self, key: _ConnectionKey, timeout: float | None) -> _Connection | _TlsConnection:
        with self._lock:
            conn = self._idle.pop(key, None)
        if conn is not None and conn.sock is not None and not _closed_by_peer(conn.sock):
            return conn
        if conn is not None:
            conn.close()
        scheme, host, port = key
        if scheme == "https":
            return _TlsConnection(host, port, timeout=timeout, context=self._context())
        return _Connection(host, port, timeout=timeout)

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context() if self._verify else ssl._create_unverified_context()
        return self._tls

    def _release(self, key: _ConnectionKey, conn: _Connection | _TlsConnection) -> None:
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


class _WireReader(io.RawIOBase):
    """Reads the socket given only the time left before the deadline, and stamps the clock on arrivals."""

    def __init__(self, sock: socket.socket, deadline: float | None, clock: WireClock | None, kernel: bool,
                 held: io.BufferedIOBase) -> None:  # fmt: skip
        self._sock, self._deadline, self._clock, self._kernel = sock, deadline, clock, kernel
        # http.client's own file on the socket, left open until this reader closes: a socket
        # closes for real only once its files are closed, and http.client closes the connection
        # as soon as the headers of a reply that will close are in, before the body is read.
        self._held = held

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        try:
            self._held.close()
        finally:
            super().close()

    def readinto(self, buffer: Any) -> int:
        if self._deadline is not None:
            self._sock.settimeout(_left(self._deadline, None))
        if not self._kernel:
            count = self._sock.recv_into(buffer)
            if count and self._clock is not None:
                self._clock.received(None)
            return count
        count, ancillary, _, _ = self._sock.recvmsg_into([buffer], _ANCILLARY_SIZE)
        clock = self._clock
        if count and clock is not None:
            if clock.sent_stamp_pending:  # the request is out: its transmit stamps are queued by now
                clock.sent_by_kernel(_sent_stamp(self._sock))
            clock.received(_kernel_ns(ancillary))
        return count


def _kernel_ns(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return int(seconds) * 1_000_000_000 + int(nanoseconds)
    return None


def _wire_response(deadline: float | None, clock: WireClock | None, *, kernel: bool) -> type[http.client.HTTPResponse]:
    class WireResponse(_CheckedResponse):
        def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
            super().__init__(sock, *args, **kwargs)
            self.fp = io.BufferedReader(_WireReader(sock, deadline, clock, kernel, held=self.fp), 65536)

    return WireResponse


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
