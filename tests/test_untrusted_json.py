"""JSON from a gateway or an orchestrator, nested as deep as it likes, is refused as data, never a RecursionError."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from typer.testing import CliRunner

from ai_job_tester.cli import app
from ai_job_tester.domain.outcome import Exchange, Outcome, classify
from ai_job_tester.domain.streaming import StreamMeter
from ai_job_tester.domain.text import MAX_JSON_DEPTH, NestedTooDeep, gateway_message, loads_untrusted
from ai_job_tester.errors import GatewayReplyError
from ai_job_tester.network import livestream
from ai_job_tester.network.gateway import GatewayCli
from ai_job_tester.sandbox import SimNetwork

from .conftest import free_port

DEEP = b"[" * 100_000  # well within the 4 MiB capture; json.loads alone raises RecursionError on it
DEEP_CLOSED = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 5_000 + b"1" + b"}" * 5_000


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (DEEP, NestedTooDeep),
        (DEEP_CLOSED, NestedTooDeep),
        (DEEP_OBJECT, NestedTooDeep),
        (nested(MAX_JSON_DEPTH + 1), NestedTooDeep),
        (b"]" * 1_000 + b"[" * 1_000, ValueError),
    ],
    ids=["unclosed", "closed", "objects", "one level too deep", "not pairing up"],
)
def test_anything_json_loads_would_refuse_or_recurse_on_is_a_value_error(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        loads_untrusted(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (nested(MAX_JSON_DEPTH), nested_list(MAX_JSON_DEPTH)),
        (b"[" + b"[]," * 9_999 + b"[]]", [[]] * 10_000),  # wide, not deep
        (b'["' + b"[" * 1_000 + b'"]', ["[" * 1_000]),  # brackets in a string are text, not nesting
        # An escaped quote ends no string, an escaped backslash does not escape the quote after it.
        (b'{"s":"\\"' + b"[" * 1_000 + b'\\\\"}', {"s": '"' + "[" * 1_000 + "\\"}),
        ('{"é":1}'.encode("utf-16"), {"é": 1}),  # decoded as json.loads decodes bytes
        ("[1]", [1]),
    ],
    ids=["at the limit", "wide", "brackets in a string", "escapes", "utf-16", "str"],
)
def test_json_within_the_depth_parses_as_json_loads_parses_it(data: bytes | str, expected: Any) -> None:
    assert loads_untrusted(data) == expected


@pytest.mark.parametrize("body", [DEEP, DEEP_CLOSED, DEEP_OBJECT], ids=["unclosed", "closed", "objects"])
def test_a_deeply_nested_200_is_the_orchestrators_invalid_response(body: bytes) -> None:
    verdict = classify("text-to-image", Exchange(status=200, body=body, round_trip=0.5, webhook_requests=1))
    assert (verdict.outcome, verdict.error_code) == (Outcome.FAILED, "INVALID_RESPONSE")
    assert verdict.message == "the reply is not JSON the tester accepts (nested deeper than 100 levels)"


def test_a_deeply_nested_error_body_gives_a_message_not_a_crash() -> None:
    assert gateway_message(DEEP_CLOSED, 20) == "[" * 19 + "…"


@pytest.mark.parametrize("line", [DEEP, b'{"error":' + DEEP_CLOSED + b"}"], ids=["chunk", "error"])
def test_a_deeply_nested_stream_line_is_skipped_by_the_meter(line: bytes) -> None:
    meter = StreamMeter(started=0.0)
    meter.feed(b"data: " + line + b"\n\n", now=1.0)
    stats = meter.stats()
    assert stats.tokens == 0 and not stats.finished and stats.error is None


@respx.mock
def test_a_deeply_nested_stream_status_is_no_status_yet() -> None:
    respx.get("http://gateway:8935/live/video-to-video/s1/status").respond(200, content=DEEP)
    with httpx.Client() as client:
        assert livestream._status(client, "http://gateway:8935", "s1") is None


@respx.mock
def test_a_deeply_nested_discovery_reply_is_a_gateway_reply_error() -> None:
    respx.get("http://gateway:7935/registeredOrchestrators").respond(200, content=DEEP_CLOSED)
    with httpx.Client() as client, pytest.raises(GatewayReplyError, match="nested deeper than 100 levels"):
        GatewayCli(client, "http://gateway:7935").registered_orchestrators()


@pytest.fixture
def deep_cli(raw_server: Callable[[Callable[[socket.socket], None]], str]) -> str:
    """A gateway CLI port that answers every request with 200 and ``[`` × 100000."""
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(DEEP) + DEEP

    def serve(conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                data += chunk
            conn.sendall(reply)

    return raw_server(serve)


def test_a_deeply_nested_discovery_reply_is_one_error_line_and_exit_1(
    network: SimNetwork, write_config: Callable[[dict[str, Any]], Path], deep_cli: str
) -> None:
    raw = network.tester_config(webhook_port=free_port())
    raw["broadcasterCliEndpoint"] = deep_cli
    result: Any = CliRunner().invoke(app, ["run", "-f", str(write_config(raw))], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the gateway's /") and "nested deeper than 100 levels" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
