"""The webhook, on real sockets: what it lists, that it counts, that it lets go of its port."""

from __future__ import annotations

import socket

import httpx
import pytest

from ai_job_tester.errors import WebhookPortInUse
from ai_job_tester.network.webhook import Webhook


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
