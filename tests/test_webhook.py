"""The webhook, on real sockets: what it lists, that it counts, that it lets go of its port."""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ai_job_tester.config import parse_config
from ai_job_tester.cycle import RunOptions, run_cycle
from ai_job_tester.domain.outcome import Outcome
from ai_job_tester.errors import WebhookPortInUse
from ai_job_tester.network import webhook as webhook_module
from ai_job_tester.network.webhook import MAX_CONNECTIONS_PER_ADDRESS, Webhook
from ai_job_tester.sandbox import SimNetwork
from ai_job_tester.sandbox.network import demo_orchestrators

from .conftest import wait_until


def url(hook: Webhook) -> str:
    return f"http://127.0.0.1:{hook.port}/orchestrators"


def test_lists_what_it_is_told_and_counts_requests() -> None:
    with Webhook.bind("127.0.0.1", 0) as hook, httpx.Client() as client:
        assert client.get(url(hook)).json() == []
        hook.show(["https://a:8935", "https://b:8935"])
        assert client.get(url(hook)).json() == [{"address": "https://a:8935"}, {"address": "https://b:8935"}]
        hook.show(["https://b:8935"])
        reply = client.get(url(hook))
        assert reply.json() == [{"address": "https://b:8935"}]
        assert reply.headers["content-type"] == "application/json"
        assert hook.requests == 3


def test_other_paths_are_not_found_and_not_counted() -> None:
    with Webhook.bind("127.0.0.1", 0) as hook, httpx.Client() as client:
        other = url(hook).replace("/orchestrators", "/other")
        assert client.get(other).status_code == 404
        assert hook.requests == 0


def test_a_busy_port_is_a_clear_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(WebhookPortInUse, match=f"webhook port {port} on 127.0.0.1 is already in use"):
            Webhook.bind("127.0.0.1", port)


def test_close_releases_the_port_even_with_a_keep_alive_connection_open() -> None:
    hook = Webhook.bind("127.0.0.1", 0)
    hook.start()
    client = httpx.Client()
    client.get(url(hook))  # leaves an idle keep-alive connection, as the gateway's Go client does
    hook.close()
    client.close()
    Webhook.bind("127.0.0.1", hook.port).close()


def _raw_exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(4096):  # the server closes: read to the end
            chunks.append(chunk)
        return b"".join(chunks)


def test_connection_close_is_honoured_and_garbage_is_refused() -> None:
    with Webhook.bind("127.0.0.1", 0) as hook:
        hook.show(["https://a:8935"])
        answer = _raw_exchange(hook.port, b"GET /orchestrators HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b'[{"address":"https://a:8935"}]')
        assert _raw_exchange(hook.port, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400 Bad Request")
        assert hook.requests == 1


# Proof of routing and the bounds: whatever reaches the port, the gateway's requests
# (GET /orchestrators/<token>) are answered and only they are counted.

TOKEN = "0123456789abcdef-token"


def gateway_get(hook: Webhook, client: httpx.Client) -> list[str]:
    """What the gateway started with -orchWebhookUrl …/orchestrators/<token> does on each job."""
    reply = client.get(f"http://127.0.0.1:{hook.port}/orchestrators/{TOKEN}", timeout=5)
    assert reply.status_code == 200
    return [entry["address"] for entry in reply.json()]


def test_with_a_token_only_the_gateways_requests_count(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ai_job_tester")
    with Webhook.bind("127.0.0.1", 0, token=TOKEN) as hook, httpx.Client() as client:
        hook.show(["https://a:8935"])
        for forged in ("/orchestrators", "/orchestrators/wrong-token", f"/orchestrators/{TOKEN}x", "/orchestrators/"):
            reply = client.get(f"http://127.0.0.1:{hook.port}{forged}")
            assert reply.json() == [{"address": "https://a:8935"}]  # answered like the gateway…
        assert (hook.requests, hook.uncounted) == (0, 4)  # …but not proof of routing
        assert gateway_get(hook, client) == ["https://a:8935"]
        assert client.get(f"http://127.0.0.1:{hook.port}/orchestrators/{TOKEN}?x=1").status_code == 200
        assert (hook.requests, hook.uncounted) == (2, 4)
    hint = hook.uncounted_hint()
    assert hint is not None and hint.startswith("4 webhook request(s) arrived without the webhook token")
    assert f"-orchWebhookUrl http://<tester>:{hook.port}/orchestrators/<webhookToken>" in hint
    assert "without the webhook token was answered, not counted" in caplog.text
    assert TOKEN not in caplog.text + hint


def test_no_hint_when_every_request_carried_the_token() -> None:
    with Webhook.bind("127.0.0.1", 0, token=TOKEN) as hook, httpx.Client() as client:
        gateway_get(hook, client)
        assert hook.uncounted_hint() is None


@pytest.mark.parametrize(("host", "token", "warned"), [("0.0.0.0", None, True), ("0.0.0.0", TOKEN, False),
                                                      ("127.0.0.1", None, False)])  # fmt: skip
def test_a_webhook_anyone_can_reach_without_a_token_warns_at_bind(
    host: str, token: str | None, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    Webhook.bind(host, 0, token=token).close()
    warning = "has no webhookToken: anything that can reach it can forge proof of routing"
    assert (warning in caplog.text) == warned


def _head_answer(conn: socket.socket) -> bytes:
    """Read what the server sends until it closes the connection."""
    chunks = []
    while chunk := conn.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /orchestrators HTTP/1.1\r\n" + b"X-A: b\r\n" * 100 + b"\r\n", b"431"),
        (b"GET /orchestrators HTTP/1.1\r\nX-A: " + b"b" * 10_000 + b"\r\n\r\n", b"431"),
        (b"GET /" + b"o" * 10_000 + b" HTTP/1.1\r\n\r\n", b"414"),
        (b"POST /orchestrators HTTP/1.1\r\nContent-Length: 2000000000\r\n\r\n", b"413"),
        (b"POST /orchestrators HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", b"413"),
        (b"POST /orchestrators HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"400"),
        (b"POST /orchestrators HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"400"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n", b"400"),
    ],
    ids=["100 header lines", "a 10 KiB header", "a 10 KiB request line", "Content-Length 2e9",
         "a body over 4 KiB", "a negative length", "chunked", "a TLS hello"],
)  # fmt: skip
def test_oversized_or_garbage_requests_are_refused_and_closed_without_being_read(
    request_bytes: bytes, status: bytes
) -> None:
    with Webhook.bind("127.0.0.1", 0, token=TOKEN) as hook, httpx.Client() as client:
        with socket.create_connection(("127.0.0.1", hook.port), timeout=10) as conn:
            conn.sendall(request_bytes)
            answer = _head_answer(conn)  # the server closes: no body it claimed is waited for
        assert answer.startswith(b"HTTP/1.1 " + status) and b"Connection: close" in answer
        assert gateway_get(hook, client) == [] and (hook.requests, hook.uncounted) == (1, 0)


def test_a_small_body_is_read_and_the_connection_kept() -> None:
    with Webhook.bind("127.0.0.1", 0, token=TOKEN) as hook:
        with socket.create_connection(("127.0.0.1", hook.port), timeout=10) as conn:
            conn.sendall(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
            conn.sendall(f"GET /orchestrators/{TOKEN} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
            answer = _head_answer(conn)
        assert answer.startswith(b"HTTP/1.1 404") and answer.endswith(b"\r\n\r\n[]")
        assert hook.requests == 1


def test_a_client_dripping_its_head_is_cut_off_while_the_gateway_is_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slowloris client sends a byte at a time forever: the head deadline ends it, whatever it sends."""
    monkeypatch.setattr(webhook_module, "HEAD_SECONDS", 0.5)
    with Webhook.bind("127.0.0.1", 0, token=TOKEN) as hook, httpx.Client() as client:
        drips = [socket.create_connection(("127.0.0.1", hook.port), timeout=10) for _ in range(5)]
        for conn in drips:
            conn.sendall(b"GET /orchestrators HTTP/1.1\r\n")
        cut: set[int] = set()
        deadline = time.monotonic() + 20
        while len(cut) < len(drips) and time.monotonic() < deadline:
            for index, conn in enumerate(drips):
                if index in cut:
                    continue
                try:
                    conn.sendall(b"X")  # one byte of an endless header line, then the gateway's turn
                    if select.select([conn], [], [], 0)[0] and conn.recv(1) == b"":
                        cut.add(index)
                except OSError:
                    cut.add(index)
            assert gateway_get(hook, client) == []
            time.sleep(0.05)  # the drip's pace: the behaviour under test, not a wait for readiness
        assert len(cut) == len(drips)
        assert hook.requests >= 1 and hook.uncounted == 0
        for conn in drips:
            conn.close()


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook_module, "IDLE_SECONDS", 0.3)
    with (
        Webhook.bind("127.0.0.1", 0, token=TOKEN) as hook,
        socket.create_connection(("127.0.0.1", hook.port), timeout=10) as conn,
    ):
        conn.sendall(f"GET /orchestrators/{TOKEN} HTTP/1.1\r\n\r\n".encode())
        assert conn.recv(4096).startswith(b"HTTP/1.1 200")
        assert conn.recv(1) == b""  # closed by the webhook, not by this test's timeout


def test_only_the_gateways_connections_are_kept_idle_long(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection that never made a counted request holds its slot no longer than a request head."""
    monkeypatch.setattr(webhook_module, "HEAD_SECONDS", 0.3)
    with (
        Webhook.bind("127.0.0.1", 0, token=TOKEN) as hook,
        socket.create_connection(("127.0.0.1", hook.port), timeout=10) as gateway,
        socket.create_connection(("127.0.0.1", hook.port), timeout=10) as silent,
        socket.create_connection(("127.0.0.1", hook.port), timeout=10) as poller,
    ):
        gateway.sendall(f"GET /orchestrators/{TOKEN} HTTP/1.1\r\n\r\n".encode())
        poller.sendall(b"GET /orchestrators HTTP/1.1\r\n\r\n")
        assert gateway.recv(4096).startswith(b"HTTP/1.1 200") and poller.recv(4096).startswith(b"HTTP/1.1 200")
        assert silent.recv(1) == b"" and poller.recv(1) == b""  # both cut after the head deadline…
        gateway.sendall(f"GET /orchestrators/{TOKEN} HTTP/1.1\r\n\r\n".encode())
        assert gateway.recv(4096).startswith(b"HTTP/1.1 200")  # …while the gateway's is still open
        assert (hook.requests, hook.uncounted) == (2, 1)


def test_a_flood_of_connections_from_one_address_cannot_starve_the_gateway() -> None:
    with Webhook.bind("127.0.0.1", 0, token=TOKEN) as hook, httpx.Client() as client:
        flood = []
        for _ in range(MAX_CONNECTIONS_PER_ADDRESS + 8):
            conn = socket.socket()
            conn.bind(("127.0.0.2", 0))  # another loopback address: "another host" for the webhook
            conn.settimeout(10)
            conn.connect(("127.0.0.1", hook.port))
            flood.append(conn)
        refused = 0
        for conn in flood[MAX_CONNECTIONS_PER_ADDRESS:]:
            answer = _head_answer(conn)
            refused += answer.startswith(b"HTTP/1.1 503")
        assert refused == 8  # the ones over the cap are refused at once…
        assert gateway_get(hook, client) == [] and hook.requests == 1  # …and the gateway still gets in
        for conn in flood:
            conn.close()


def test_the_global_cap_refuses_more_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook_module, "MAX_CONNECTIONS", 4)
    with Webhook.bind("127.0.0.1", 0, token=TOKEN) as hook:
        held = [socket.create_connection(("127.0.0.1", hook.port), timeout=10) for _ in range(4)]
        with socket.create_connection(("127.0.0.1", hook.port), timeout=10) as extra:
            assert _head_answer(extra).startswith(b"HTTP/1.1 503")
        held.pop().close()  # a slot frees up when a connection ends
        wait_until(lambda: _one_get_answers(hook.port), what="a freed slot")
        for conn in held:
            conn.close()


def _one_get_answers(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET /orchestrators/{TOKEN} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
        return _head_answer(conn).startswith(b"HTTP/1.1 200")


def test_a_gateway_started_without_the_token_leaves_jobs_unrouted_and_says_why(
    start_network: Callable[..., SimNetwork],
) -> None:
    """The simulated gateway can be started with the plain URL, as a misconfigured one is."""
    network = start_network([demo_orchestrators()[0]], gateway_sends_token=False)
    hook = Webhook.bind("127.0.0.1", 0)
    config = parse_config(network.tester_config(webhook_port=hook.port), source=Path("sim"))
    assert config.webhook_token_value == network.webhook_token
    run_cycle(config, RunOptions(post=False), webhook=hook)
    assert hook.requests == 0 and hook.uncounted > 0
    assert hook.uncounted_hint() is not None


def test_a_poller_on_the_webhook_port_cannot_make_a_mainline_gateways_jobs_look_routed(
    start_network: Callable[..., SimNetwork],
) -> None:
    """Issue #14: anything polling /orchestrators used to count as the gateway's proof of routing."""
    network = start_network(demo_orchestrators()[:2], tester_mode=False)  # caches the webhook's answer
    hook = Webhook.bind("127.0.0.1", 0)
    config = parse_config(network.tester_config(webhook_port=hook.port), source=Path("sim"))
    stop = threading.Event()

    def poll() -> None:  # a health check or a port scanner, as fast as it can
        with httpx.Client() as client:
            while not stop.is_set():
                with contextlib.suppress(httpx.HTTPError):  # the cycle closes the webhook at its end
                    client.get(f"http://127.0.0.1:{hook.port}/orchestrators")

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        report = run_cycle(config, RunOptions(), webhook=hook)
    finally:
        stop.set()
        poller.join()
    assert hook.uncounted > 0
    assert network.leaderboard.rows == []  # nothing attributed to an orchestrator it may not have run on
    assert all(result.outcome is Outcome.UNROUTED or result.outcome is Outcome.NOT_RUN for result in report.results)
