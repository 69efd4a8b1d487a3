"""The lean transport on real loopback sockets: keep-alive, and every failure as httpx names it."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from ai_job_tester.network import transport
from ai_job_tester.network.transport import StdlibTransport, WireClock

from .conftest import free_port


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    return data


def keep_alive(connections: list[int]) -> Callable[[socket.socket], None]:
    def serve(conn: socket.socket) -> None:
        connections.append(1)
        while _read_request(conn):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        conn.close()

    return serve


def client() -> httpx.Client:
    return httpx.Client(transport=StdlibTransport(), timeout=httpx.Timeout(1.0))


def test_a_kept_alive_connection_serves_every_request(raw_server: Callable[..., str]) -> None:
    connections: list[int] = []
    url = raw_server(keep_alive(connections))
    with client() as http:
        assert [http.get(url).text for _ in range(3)] == ["ok"] * 3
    assert len(connections) == 1


def test_a_connection_the_server_closed_is_replaced_not_reused(raw_server: Callable[..., str]) -> None:
    connections: list[int] = []
    closed = threading.Event()

    def once(conn: socket.socket) -> None:
        connections.append(1)
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        conn.close()  # without saying Connection: close, as an idle timeout does
        closed.set()

    url = raw_server(once)
    with client() as http:
        assert http.get(url).text == "ok"
        assert closed.wait(5)  # the idle connection is gone before the next job, as in the field
        assert http.get(url).text == "ok"  # sent once, on a fresh connection
    assert len(connections) == 2


@pytest.mark.parametrize(
    ("serve", "error"),
    [
        (lambda conn: (_read_request(conn), conn.close()), httpx.RemoteProtocolError),
        (lambda conn: (_read_request(conn), threading.Event().wait(3)), httpx.ReadTimeout),
        (lambda conn: (_read_request(conn), conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"),
                       conn.close()), httpx.RemoteProtocolError),
    ],
    ids=["dropped", "silent", "cut-short"],
)  # fmt: skip
def test_failures_come_out_as_httpx_errors(
    raw_server: Callable[..., str], serve: Callable[[socket.socket], None], error: type[Exception]
) -> None:
    url = raw_server(serve)
    with client() as http, pytest.raises(error):
        http.get(url).read()


def test_a_refused_connection_is_a_connect_error() -> None:
    with client() as http, pytest.raises(httpx.ConnectError):
        http.get(f"http://127.0.0.1:{free_port()}/")


def test_a_streamed_body_is_sent_as_it_is_produced(raw_server: Callable[..., str]) -> None:
    received: list[bytes] = []

    def echo_length(conn: socket.socket) -> None:
        data = _read_request(conn)
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
                     .split(b":")[1])  # fmt: skip
        while len(rest) < length:
            rest += conn.recv(65536)
        received.append(rest)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    url = raw_server(echo_length)
    pieces = (bytes([n]) * 1000 for n in range(5))
    with client() as http:
        http.post(url, content=pieces, headers={"Content-Length": "5000"})
    assert received == [b"".join(bytes([n]) * 1000 for n in range(5))]


@pytest.mark.skipif(sys.platform != "linux", reason="kernel receive timestamps are Linux's")
def test_time_the_interpreter_spends_elsewhere_stays_out_of_the_round_trip(raw_server: Callable[..., str]) -> None:
    def late_body(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
        threading.Event().wait(0.05)
        conn.sendall(b"ok")

    clock = WireClock()
    with client() as http:
        request = http.build_request("GET", raw_server(late_body), extensions={"wire_clock": clock})
        response = http.send(request, stream=True)
        threading.Event().wait(0.4)  # as if another lane held the interpreter when the body arrived
        assert response.read() == b"ok"
    round_trip = clock.round_trip()
    assert clock.kernel_stamped and round_trip is not None
    assert 0.05 <= round_trip < 0.3  # the body's arrival, not the moment it was read


@pytest.mark.skipif(sys.platform != "linux", reason="kernel receive timestamps are Linux's")
def test_a_closing_reply_keeps_the_kernels_receive_stamp_for_a_body_that_comes_later(
    raw_server: Callable[..., str],
) -> None:
    def closing(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n")
        threading.Event().wait(0.05)
        conn.sendall(b"ok")
        conn.close()

    clock = WireClock()
    with client() as http:
        request = http.build_request("GET", raw_server(closing), extensions={"wire_clock": clock})
        response = http.send(request, stream=True)
        threading.Event().wait(0.4)  # the body waits in the socket, which http.client has already "closed"
        assert response.read() == b"ok"
    round_trip = clock.round_trip()
    assert clock.kernel_stamped and round_trip is not None
    assert 0.05 <= round_trip < 0.3


@pytest.mark.skipif(sys.platform != "linux", reason="kernel transmit timestamps are Linux's")
def test_the_clock_starts_at_the_kernels_transmit_stamp_and_the_connection_stays_reusable(
    raw_server: Callable[..., str],
) -> None:
    connections: list[int] = []
    url = raw_server(keep_alive(connections))
    with client() as http:
        for _ in range(3):
            clock = WireClock()
            started = time.perf_counter()
            response = http.send(http.build_request("POST", url, content=b"{}", extensions={"wire_clock": clock}))
            assert response.text == "ok"
            assert clock.kernel_sent and clock.first_sent is not None and clock.first_sent >= started
    assert len(connections) == 1  # no stamp left queued made the idle connection look closed


def test_a_slow_upload_is_inside_the_round_trip(raw_server: Callable[..., str]) -> None:
    body = b"x" * (8 * 1024 * 1024)  # far more than the socket buffers hold

    def slow_reader(conn: socket.socket) -> None:
        data = _read_request(conn)
        threading.Event().wait(0.3)  # the server takes its time to read the body
        received = len(data.partition(b"\r\n\r\n")[2])
        while received < len(body):
            received += len(conn.recv(1 << 20))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    clock = WireClock()
    with client() as http:
        request = http.build_request("POST", raw_server(slow_reader), content=body, extensions={"wire_clock": clock})
        assert http.send(request).text == "ok"
    round_trip = clock.round_trip()
    assert round_trip is not None and round_trip >= 0.3


def test_a_kernel_that_refuses_the_stamp_request_still_gets_the_request(
    raw_server: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "_TX_STAMPS", b"\x01")  # a malformed request: the kernel refuses it
    connections: list[int] = []
    url = raw_server(keep_alive(connections))
    with client() as http:
        for _ in range(2):
            clock = WireClock()
            response = http.send(http.build_request("POST", url, content=b"{}", extensions={"wire_clock": clock}))
            assert response.text == "ok" and not clock.kernel_sent and clock.round_trip() is not None
