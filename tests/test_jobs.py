"""Building and sending one job: the right body, the right fields, streamed files, honest timing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
import respx
from requests_toolbelt.multipart.decoder import MultipartDecoder

from ai_job_tester.config import Config, parse_config
from ai_job_tester.domain.discovery import Orchestrator
from ai_job_tester.domain.outcome import TransportFault
from ai_job_tester.domain.plan import PlannedJob
from ai_job_tester.errors import GatewayUnreachable
from ai_job_tester.network.jobs import PreparedJob, form_value, prepare, send
from ai_job_tester.network.transport import MalformedReply

from .conftest import GO_CONFIG

GATEWAY = "http://localhost:8935"
ORCH = Orchestrator("0xaaaa", "https://a:8935")


def config(**change: Any) -> Config:
    raw = json.loads(GO_CONFIG.read_text())
    raw.update(change)
    return parse_config(raw, source=GO_CONFIG)


def job_for(cfg: Config, route: str, model: str = "the-model") -> PlannedJob:
    pipeline = next(p for p in cfg.pipeline_specs() if p.route == route)
    return PlannedJob(ORCH, pipeline.name, model, True, pipeline)


def body_of(request: httpx.Request) -> bytes:
    return b"".join(request.stream)  # type: ignore[arg-type]


def test_json_job_sends_parameters_plus_model_id() -> None:
    cfg = config()
    with ExitStack() as files:
        prepared = prepare(job_for(cfg, "text-to-image"), cfg.lanes[0], files)
    assert prepared.request.url == f"{GATEWAY}/text-to-image"
    sent = json.loads(body_of(prepared.request))
    assert sent["model_id"] == "the-model" and sent["prompt"].startswith("a bear") and sent["safety_check"] is False
    assert json.loads(prepared.input_parameters) == sent
    assert "Authorization" not in prepared.request.headers  # "None" means no token


def test_json_llm_sends_the_model_in_model() -> None:
    raw = json.loads(GO_CONFIG.read_text())
    raw["pipelines"][-1].update(
        contentType="application/json", parameters={"messages": [], "max_tokens": 9, "stream": False}
    )
    cfg = parse_config(raw, source=GO_CONFIG)
    with ExitStack() as files:
        sent = json.loads(body_of(prepare(job_for(cfg, "llm"), cfg.lanes[0], files).request))
    assert sent["model"] == "the-model" and "model_id" not in sent


def test_bearer_token_is_sent_when_configured() -> None:
    cfg = config(broadcasterRequestToken="tok")
    with ExitStack() as files:
        assert (
            prepare(job_for(cfg, "text-to-image"), cfg.lanes[0], files).request.headers["Authorization"] == "Bearer tok"
        )


def test_multipart_job_streams_the_asset_with_string_fields() -> None:
    cfg = config()
    job = job_for(cfg, "segment-anything-2")
    with ExitStack() as files:
        prepared = prepare(job, cfg.lanes[0], files)
        assert not isinstance(prepared.request.stream, (bytes, bytearray))  # streamed, not built in memory
        raw = body_of(prepared.request)
    assert int(prepared.request.headers["Content-Length"]) == len(raw)
    parts = {_name(p): p for p in MultipartDecoder(raw, prepared.request.headers["Content-Type"]).parts}
    assert parts["model_id"].text == "the-model"
    assert parts["multimask_output"].text == "true" and parts["box"].text == "[380.50, 130.00, 651.50, 479.00]"
    assert parts["image"].content == job.pipeline.asset.read_bytes()


def test_audio_job_sends_the_clip_in_the_audio_field() -> None:
    cfg = config()
    with ExitStack() as files:
        prepared = prepare(job_for(cfg, "audio-to-text"), cfg.lanes[0], files)
        raw = body_of(prepared.request)
    parts = {_name(p): p for p in MultipartDecoder(raw, prepared.request.headers["Content-Type"]).parts}
    assert parts["audio"].content[4:8] == b"ftyp"


def _name(part: Any) -> str:
    disposition = part.headers[b"Content-Disposition"].decode()
    return disposition.split('name="', 1)[1].split('"', 1)[0]


@pytest.mark.parametrize(("value", "text"), [(True, "true"), (False, "false"), (2, "2"), (0.5, "0.5"), ("s", "s"),
                                             ([1, 2], "[1,2]")])  # fmt: skip
def test_form_values_are_plain_strings(value: object, text: str) -> None:
    assert form_value(value) == text


class _Trickle(httpx.SyncByteStream):
    def __init__(self, chunks: int, pause: float) -> None:
        self.chunks, self.pause = chunks, pause

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.chunks):
            time.sleep(self.pause)
            yield b" "
        yield b'{"images":[{"url":"/x.png"}]}'


def _prepared(timeout: float = 5.0) -> PreparedJob:
    return PreparedJob(httpx.Request("POST", f"{GATEWAY}/text-to-image", content=b"{}"), "{}", timeout)


def test_round_trip_includes_reading_the_whole_body() -> None:
    hits = iter(range(100))
    with respx.mock:
        respx.post(f"{GATEWAY}/text-to-image").respond(200, stream=_Trickle(3, 0.05))
        with httpx.Client() as client:
            exchange = send(client, _prepared(), webhook_requests=lambda: next(hits))
    assert exchange.round_trip >= 0.15
    assert exchange.body.endswith(b'/x.png"}]}') and exchange.webhook_requests == 1


def test_a_reply_that_does_not_finish_in_time_is_a_timeout() -> None:
    with respx.mock:
        respx.post(f"{GATEWAY}/text-to-image").respond(200, stream=_Trickle(20, 0.02))
        with httpx.Client() as client:
            exchange = send(client, _prepared(timeout=0.1), webhook_requests=lambda: 1)
    assert exchange.fault is TransportFault.TIMEOUT


def test_body_capture_is_capped() -> None:
    with respx.mock:
        respx.post(f"{GATEWAY}/text-to-image").respond(200, content=b"x" * 5000)
        with httpx.Client() as client:
            exchange = send(client, _prepared(), webhook_requests=lambda: 1, capture_limit=1000)
    assert len(exchange.body) == 1000 and not exchange.captured_all


@pytest.mark.parametrize(
    ("error", "fault", "detail"),
    [
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), TransportFault.DROPPED,
         "the connection closed before a complete reply (Server disconnected without sending a response.)"),
        (httpx.ReadError("reset"), TransportFault.DROPPED, "the connection closed before a complete reply (reset)"),
        (httpx.WriteError("broken pipe"), TransportFault.DROPPED,
         "the connection closed before a complete reply (broken pipe)"),
        (httpx.ReadTimeout("slow"), TransportFault.TIMEOUT, "no complete reply within 5 s"),
        (httpx.WriteTimeout("slow"), TransportFault.TIMEOUT, "no complete reply within 5 s"),
        (MalformedReply("bad chunk"), TransportFault.MALFORMED, "the reply is not valid HTTP (bad chunk)"),
        (httpx.DecodingError("not gzip"), TransportFault.MALFORMED, "the reply is not valid HTTP (not gzip)"),
    ],
)  # fmt: skip
def test_transport_failures_after_connecting_are_orchestrator_faults(
    error: Exception, fault: TransportFault, detail: str
) -> None:
    with respx.mock:
        respx.post(f"{GATEWAY}/text-to-image").mock(side_effect=error)
        with httpx.Client() as client:
            exchange = send(client, _prepared(), webhook_requests=lambda: 1)
    assert (exchange.fault, exchange.fault_detail, exchange.body) == (fault, detail, b"")


@pytest.mark.parametrize("error", [httpx.ConnectError("refused"), httpx.ConnectTimeout("no answer")])
def test_a_gateway_that_refuses_connections_is_a_tester_error(error: Exception) -> None:
    with respx.mock:
        respx.post(f"{GATEWAY}/text-to-image").mock(side_effect=error)
        with httpx.Client() as client, pytest.raises(GatewayUnreachable, match="broadcasterJobEndpoint"):
            send(client, _prepared(), webhook_requests=lambda: 1)


def test_an_error_that_is_no_transport_fault_is_not_made_into_one() -> None:
    with respx.mock:
        respx.post(f"{GATEWAY}/text-to-image").mock(side_effect=httpx.UnsupportedProtocol("gopher"))
        with httpx.Client() as client, pytest.raises(httpx.UnsupportedProtocol):
            send(client, _prepared(), webhook_requests=lambda: 1)
