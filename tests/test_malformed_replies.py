"""A gateway that answers garbage fails the job with a clear code; one that drips costs at most the job's timeout.

Each peer is a raw socket on 127.0.0.1 that reads the request and sends exactly the
bytes under test, as a broken or hostile gateway would.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from ai_job_tester.domain.media import MediaKind, MediaTarget
from ai_job_tester.domain.outcome import Outcome, TransportFault, classify
from ai_job_tester.network import media
from ai_job_tester.network.jobs import PreparedJob, send
from ai_job_tester.network.transport import StdlibTransport

Serve = Callable[[socket.socket], None]


@pytest.fixture
def peer(raw_server: Callable[[Callable[[socket.socket], None]], str]) -> Iterator[Callable[[Serve], str]]:
    """Start a raw-socket peer that serves each connection with the given function; return its URL."""
    stop = threading.Event()
    yield lambda serve: raw_server(lambda conn: _serve_then_close(serve, conn, stop))
    stop.set()


def _serve_then_close(serve: Serve, conn: socket.socket, stop: threading.Event) -> None:
    with conn:
        _read_request(conn)
        try:
            serve(conn)
        except OSError:
            return  # the tester hung up first, as it should on garbage
        stop.wait(5)  # stay up: the garbage, not a closed connection, must be what fails the job


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk


def sends(raw: bytes) -> Serve:
    return lambda conn: conn.sendall(raw)


OK = b"HTTP/1.1 200 OK\r\n"
GARBAGE = {
    "status line not HTTP": b"SPDY/9 banana\r\n\r\n",
    "status code not a number": b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
    "status code out of range": b"HTTP/1.1 1000 Big\r\nContent-Length: 0\r\n\r\n",
    "status line of 70 KB": b"HTTP/1.1 200 " + b"O" * 70_000 + b"\r\n\r\n",
    "more than 100 headers": OK + b"".join(b"X-H%d: v\r\n" % n for n in range(150)) + b"\r\n",
    "a header line of 70 KB": OK + b"X-Big: " + b"v" * 70_000 + b"\r\nContent-Length: 0\r\n\r\n",
    "bad chunk size": OK + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
    "chunk-size line of 70 KB": OK + b"Transfer-Encoding: chunked\r\n\r\n" + b"1" * 70_000 + b"\r\n",
    "gzip that is not gzip": OK + b"Content-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!",
}


def _send(url: str, timeout: float = 5.0) -> tuple[float, object]:
    request = httpx.Request("POST", f"{url}/text-to-image", content=b"{}", headers={"Content-Type": "application/json"})
    prepared = PreparedJob(request=request, input_parameters="{}", timeout=timeout)
    with httpx.Client(transport=StdlibTransport()) as client:
        started = time.perf_counter()
        exchange = send(client, prepared, webhook_requests=iter(range(0, 100)).__next__)
        return time.perf_counter() - started, exchange


@pytest.mark.parametrize("raw", GARBAGE.values(), ids=GARBAGE.keys())
def test_a_malformed_reply_is_a_failed_job_with_its_own_code_not_a_crash(
    peer: Callable[[Serve], str], raw: bytes
) -> None:
    _, exchange = _send(peer(sends(raw)))
    verdict = classify("text-to-image", exchange)  # type: ignore[arg-type]
    assert verdict.outcome is Outcome.FAILED
    assert verdict.error_code == TransportFault.MALFORMED.value == "MALFORMED_REPLY"
    assert len(verdict.message) < 400  # a 70 KB line is described, not copied


def test_header_bytes_above_ascii_reach_the_classifier_instead_of_raising(peer: Callable[[Serve], str]) -> None:
    raw = OK + b"X-Name: caf\xe9 \xff\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    _, exchange = _send(peer(sends(raw)))
    verdict = classify("text-to-image", exchange)  # type: ignore[arg-type]
    assert verdict.error_code == "INVALID_RESPONSE"  # judged on its body, like any other 200


def _drip(data: bytes, every: float) -> Serve:
    def serve(conn: socket.socket) -> None:
        for byte in data:
            conn.sendall(bytes([byte]))
            time.sleep(every)

    return serve


@pytest.mark.parametrize(
    "data",
    [OK + b"X-Slow: " + b"v" * 200, OK + b"Content-Length: 500\r\n\r\n" + b"x" * 500],
    ids=["headers", "body"],
)
def test_a_dripping_peer_costs_at_most_the_jobs_timeout(peer: Callable[[Serve], str], data: bytes) -> None:
    # Each byte arrives well within any per-read timeout; only a total deadline ends it.
    elapsed, exchange = _send(peer(_drip(data, 0.05)), timeout=0.6)
    verdict = classify("text-to-image", exchange)  # type: ignore[arg-type]
    assert verdict.error_code == "TIMEOUT"
    assert elapsed < 0.6 + 0.5  # the deadline, plus scheduling slack on a busy machine


def test_a_dripping_media_server_costs_the_output_check_at_most_its_timeout(
    peer: Callable[[Serve], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(media, "MEDIA_TIMEOUT_SECONDS", 0.6)
    url = peer(_drip(OK + b"Content-Length: 500\r\n\r\n" + b"x" * 500, 0.05))
    with httpx.Client(transport=StdlibTransport()) as client:
        fetched = media.fetch(client, url, MediaTarget("/stream/out.png", MediaKind.IMAGE))
    assert fetched.error is not None and "Timeout" in fetched.error
    assert fetched.seconds < 0.6 + 0.5


IMAGE = b'{"images":[{"url":"/stream/out.png"}]}'
HEAD_THEN_BODY = 0.2  # how long the peer waits between the headers and the body


def _head_then_body(head: bytes, body: bytes, *, close_after: bool) -> Serve:
    def serve(conn: socket.socket) -> None:
        conn.sendall(head)
        time.sleep(HEAD_THEN_BODY)  # the body comes in a later read than the headers
        conn.sendall(body)
        if close_after:
            conn.shutdown(socket.SHUT_WR)  # the close is what ends a close-delimited body

    return serve


CLOSING = {
    "Content-Length and Connection: close": (
        OK + b"Connection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(IMAGE),
        False,
    ),
    "HTTP/1.0 with Content-Length": (
        b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(IMAGE),
        False,
    ),
    "HTTP/1.0 ended by the close": (b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n", True),
}


@pytest.mark.parametrize(("head", "close_after"), CLOSING.values(), ids=CLOSING.keys())
def test_a_valid_reply_that_closes_the_connection_passes_with_its_real_round_trip(
    peer: Callable[[Serve], str], head: bytes, close_after: bool
) -> None:
    _, exchange = _send(peer(_head_then_body(head, IMAGE, close_after=close_after)))
    verdict = classify("text-to-image", exchange)  # type: ignore[arg-type]
    assert verdict.outcome is Outcome.PASSED, verdict.message
    assert exchange.body == IMAGE  # type: ignore[attr-defined]
    assert HEAD_THEN_BODY <= exchange.round_trip < HEAD_THEN_BODY + 0.3  # type: ignore[attr-defined]


BAD_FRAMING = {
    "Content-Length not a number": OK + b"Content-Length: 12abc\r\n\r\n" + IMAGE,
    "negative Content-Length": OK + b"Content-Length: -5\r\n\r\n" + IMAGE,
    "two different Content-Lengths": OK + b"Content-Length: 5\r\nContent-Length: 7\r\n\r\n" + IMAGE,
    "a list of Content-Lengths": OK + b"Content-Length: 2, 2\r\n\r\n{}",
    "header line with no colon, before the length": OK + b"NoColonHere\r\nContent-Length: 2\r\n\r\n{}",
    "header line with no colon, after the length": OK + b"Content-Length: 2\r\nNoColonHere\r\n\r\n{}",
    "unknown Transfer-Encoding": OK + b"Transfer-Encoding: banana\r\nContent-Length: 2\r\n\r\n{}",
    "chunked not the only coding": OK + b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("raw", BAD_FRAMING.values(), ids=BAD_FRAMING.keys())
def test_a_reply_whose_framing_cannot_be_trusted_is_malformed_not_a_dropped_connection(
    peer: Callable[[Serve], str], raw: bytes
) -> None:
    _, exchange = _send(peer(sends(raw)))
    verdict = classify("text-to-image", exchange)  # type: ignore[arg-type]
    assert verdict.error_code == "MALFORMED_REPLY", verdict.message
