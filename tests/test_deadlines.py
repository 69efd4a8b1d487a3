"""Every network wait has a total deadline: a peer that drips its answer a byte at a time costs at most that."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from ai_job_tester.cli import app
from ai_job_tester.errors import GatewayReplyError
from ai_job_tester.network.gateway import GatewayCli
from ai_job_tester.network.leaderboard import Leaderboard
from ai_job_tester.sandbox import SimNetwork

from .conftest import free_port
from .test_delivery import row


class DrippingPeer:
    """A peer on 127.0.0.1 that reads a request, sends ``head``, then one byte every 0.2 s for as long as it is read."""

    def __init__(self, head: bytes) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.asked = threading.Event()  # a request has arrived: the client is now waiting on the drip
        self.asked_at = 0.0
        self._head = head
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            self.asked_at = time.monotonic()
            self.asked.set()
            try:
                conn.sendall(self._head)
                while not self._stop.wait(0.2):
                    conn.sendall(b"x")
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self.server.close()


@pytest.fixture
def dripping() -> Iterator[str]:
    """A peer that answers 200 with a long body, then drips the body."""
    peer = DrippingPeer(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[")
    yield peer.url
    peer.close()


@pytest.fixture
def dripping_headers() -> Iterator[DrippingPeer]:
    """A peer that drips its headers: urllib (the Pushgateway client) returns once they end, so they never do."""
    peer = DrippingPeer(b"HTTP/1.1 200 OK\r\nX-Drip: ")
    yield peer
    peer.close()


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


T2I = {"name": "Text to image", "uri": "text-to-image", "contentType": "application/json",
       "parameters": {"prompt": "a bear"}, "verify_output": False}  # fmt: skip


def test_a_dripping_pushgateway_costs_the_push_its_deadline_and_is_a_warning(
    dripping_headers: DrippingPeer, network: SimNetwork, write_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr("ai_job_tester.output.metrics.PUSH_DEADLINE_SECONDS", 1.0)
    path = write_config(network.tester_config(webhook_port=free_port(), pipelines=[T2I]))
    result = CliRunner().invoke(app, ["run", "-f", str(path), "--pushgateway", dripping_headers.url],
                                catch_exceptions=False)  # fmt: skip
    assert dripping_headers.asked.is_set() and time.monotonic() - dripping_headers.asked_at < 1 + 1.5
    assert result.exit_code == 0  # the cycle's results stand: a late push is only reported
    warning = f"Warning: could not push metrics to {dripping_headers.url}: the metrics push did not finish within 1 s\n"
    assert warning in result.stderr and "Traceback" not in result.stderr


def test_sigterm_while_the_push_hangs_exits_143_at_once(
    dripping_headers: DrippingPeer, network: SimNetwork, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    """In the container the run holds tick.sh's flock: SIGTERM must end it as documented, not by Python's default."""
    path = write_config(network.tester_config(webhook_port=free_port(), pipelines=[T2I]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ai_job_tester", "run", "-f", str(path), "--state-dir", str(tmp_path / "state"),
         "--pushgateway", dripping_headers.url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert dripping_headers.asked.wait(timeout=60), "the run never pushed"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 143, stderr
    assert took < 2, f"took {took:.1f} s"
    assert "Interrupted by SIGTERM" in stderr and "Traceback" not in stderr
