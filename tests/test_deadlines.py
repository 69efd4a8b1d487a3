"""Every network wait has a total deadline: a peer that drips its answer a byte at a time costs at most that."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from ai_job_tester.errors import GatewayReplyError
from ai_job_tester.network.gateway import GatewayCli
from ai_job_tester.network.leaderboard import Leaderboard

from .test_delivery import row


@pytest.fixture
def dripping() -> Iterator[str]:
    """A peer that answers 200 with a long body, then sends one byte every 0.2 s for as long as it is read."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[")
                while not stop.wait(0.2):
                    conn.sendall(b" ")
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    server.close()


def test_a_dripping_discovery_reply_costs_its_deadline_and_says_so(
    dripping: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ai_job_tester.network.gateway.DISCOVERY_TIMEOUT_SECONDS", 1.0)
    started = time.monotonic()
    with httpx.Client() as client, pytest.raises(GatewayReplyError, match="did not finish within 1 s"):
        GatewayCli(client, dripping).registered_orchestrators()
    assert time.monotonic() - started < 3  # not the per-read timeout times the body's length


def test_a_dripping_leaderboard_costs_a_post_its_deadline(dripping: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ai_job_tester.network.leaderboard.POST_TIMEOUT_SECONDS", 1.0)
    started = time.monotonic()
    with httpx.Client() as client:
        board = Leaderboard(client, f"{dripping}/api/post_stats", SecretStr("k"))
        delivery = board.post(row("m"))
        assert board.ai_regions() is None
    assert not delivery.delivered and delivery.status is None and "DeadlineExceeded" in delivery.message
    assert time.monotonic() - started < 4
