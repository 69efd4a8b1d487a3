"""Shared fixtures: the simulated network on loopback, a free port, config files."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ai_job_tester.sandbox import SimLeaderboard, SimNetwork, SimOrchestrator

GO_CONFIG = Path(__file__).parent / "data" / "go-tester-config.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def fresh_logging() -> Iterator[None]:
    """The CLI points the tester's logger at the stderr of the moment; do not let it outlive a test."""
    yield
    logger = logging.getLogger("ai_job_tester")
    logger.handlers.clear()
    logger.propagate = True


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own default state directory: no outbox leaks between tests or into $HOME."""
    home = tmp_path / "state-home"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home / "ai-job-tester"


@pytest.fixture
def board() -> Iterator[SimLeaderboard]:
    """A simulated leaderboard on its own, with the secret ``k``."""
    sim = SimLeaderboard("k")
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def network() -> Iterator[SimNetwork]:
    with SimNetwork() as sim:
        yield sim


@pytest.fixture
def start_network() -> Iterator[Callable[..., SimNetwork]]:
    """Start simulated networks of a test's own orchestrators; all are stopped after the test."""
    started: list[SimNetwork] = []

    def start(orchestrators: list[SimOrchestrator], **options: Any) -> SimNetwork:
        network = SimNetwork(orchestrators, **options)
        network.start()
        started.append(network)
        return network

    yield start
    for network in started:
        network.stop()


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    def write(raw: dict[str, Any], name: str = "config.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(raw), encoding="utf-8")
        return path

    return write


@pytest.fixture
def sim_config(network: SimNetwork, write_config: Callable[[dict[str, Any]], Path]) -> Callable[..., Path]:
    """Write a Go-format config for the simulated network and return its path."""

    def make(**extra: Any) -> Path:
        return write_config(network.tester_config(webhook_port=free_port(), **extra))

    return make


def wait_until(condition: Callable[[], bool], *, seconds: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail after ``seconds`` (never a bare sleep)."""
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], str]]:
    """A raw-socket peer on loopback: each accepted connection is served by the given function; returns the URL."""
    listeners: list[socket.socket] = []

    def start(serve: Callable[[socket.socket], None]) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def loop() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                threading.Thread(target=serve, args=(conn,), daemon=True).start()

        threading.Thread(target=loop, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    yield start
    for listener in listeners:
        listener.close()
