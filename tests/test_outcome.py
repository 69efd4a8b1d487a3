"""Classification: a job passes only with a 2xx and the route's success shape; tester faults never count."""

from __future__ import annotations

import json

import pytest

from ai_job_tester.domain.outcome import Exchange, Outcome, TransportFault, classify
from ai_job_tester.domain.streaming import StreamMeter, StreamStats
from ai_job_tester.domain.text import gateway_message


def exchange(status: int | None = 200, body: object = b"", *, hits: int = 3, **kw: object) -> Exchange:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Exchange(
        status=status,
        body=raw,
        round_trip=0.5,
        webhook_requests=hits,
        **kw,
    )  # type: ignore[arg-type]


IMAGE_OK = {"images": [{"url": "/stream/x/0.png", "seed": 1, "nsfw": False}]}


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("text-to-image", IMAGE_OK),
        ("image-to-video", {"images": [{"url": "/stream/x/0.mp4", "seed": 1, "nsfw": False}]}),
        ("audio-to-text", {"text": "hi", "chunks": [{"timestamp": [0, 1], "text": "hi"}]}),
        ("segment-anything-2", {"masks": "[]", "scores": "[]", "logits": "[]"}),
        ("llm", {"id": "1", "model": "m", "created": 1, "usage": {}, "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "42"}, "finish_reason": "stop"}]}),
        ("llm", {"response": "42", "tokens_used": 3}),
        ("image-to-text", {"text": "a bear"}),
        ("text-to-speech", {"audio": {"url": "/stream/x/0.wav"}}),
        ("a-future-route", {"anything": 1}),
    ],
)  # fmt: skip
def test_success_shapes_pass(route: str, body: object) -> None:
    assert classify(route, exchange(200, body)).outcome is Outcome.PASSED


@pytest.mark.parametrize(
    ("route", "body", "reason"),
    [
        ("text-to-image", b"", "the reply body is empty"),
        ("text-to-image", {"images": []}, "images: List should have at least 1 item"),
        ("text-to-image", b"<html>ok</html>", "the reply is not JSON"),
        ("upscale", {"images": [{"url": ""}]}, "images[0].url"),
        ("llm", {"choices": []}, "choices"),
        ("text-to-speech", {"audio": {}}, "audio.url"),
    ],
)
def test_a_2xx_without_the_success_shape_fails(route: str, body: object, reason: str) -> None:
    verdict = classify(route, exchange(200, body))
    assert (verdict.outcome, verdict.error_code) == (Outcome.FAILED, "INVALID_RESPONSE")
    assert reason in verdict.message


def test_an_error_status_fails_with_the_gateways_message() -> None:
    verdict = classify("text-to-image", exchange(503, {"error": {"message": "Service Unavailable Error"}}))
    assert (verdict.outcome, verdict.error_code, verdict.message) == (
        Outcome.FAILED, "503", "Service Unavailable Error",
    )  # fmt: skip


@pytest.mark.parametrize("fault", list(TransportFault))
def test_timeouts_and_dropped_connections_fail_the_orchestrator(fault: TransportFault) -> None:
    verdict = classify("llm", exchange(None, fault=fault, fault_detail="detail"))
    assert (verdict.outcome, verdict.error_code, verdict.message) == (Outcome.FAILED, fault.value, "detail")


def test_a_job_the_gateway_never_routed_through_the_webhook_is_unrouted() -> None:
    verdict = classify("text-to-image", exchange(200, IMAGE_OK, hits=0))
    assert verdict.outcome is Outcome.UNROUTED and not verdict.outcome.postable
    assert "-aiTesterGateway=true" in verdict.message


def test_a_request_rejected_before_routing_is_not_the_orchestrators_failure() -> None:
    verdict = classify("llm", exchange(400, {"error": {"message": "missing required fields"}}, hits=0))
    assert verdict.outcome is Outcome.REJECTED and not verdict.outcome.postable
    assert "rejected the request before routing it (HTTP 400: missing required fields)" in verdict.message


def test_a_reply_past_the_capture_limit_fails() -> None:
    verdict = classify("text-to-image", exchange(200, b'{"images": [', captured_all=False))
    assert verdict.error_code == "INVALID_RESPONSE" and "capture limit" in verdict.message


def _streamed(body: bytes) -> StreamStats:
    meter = StreamMeter(started=0.0)
    meter.feed(body, now=0.1)
    return meter.stats()


@pytest.mark.parametrize(
    ("stream", "outcome", "code"),
    [
        (b'data: {"choices":[{"delta":{"content":"4"},"finish_reason":""}]}\n\n'
         b'data: {"choices":[{"delta":{"content":""},"finish_reason":"stop"}]}\n\n', Outcome.PASSED, None),
        (b'data: {"choices":[{"delta":{"content":"4"},"finish_reason":""}]}\n\n', Outcome.FAILED, "STREAM_INCOMPLETE"),
        (b'data: {"error":{"message":"runner crashed"}}\n\n', Outcome.FAILED, "STREAM_ERROR"),
    ],
)  # fmt: skip
def test_llm_streams_pass_only_with_a_finishing_chunk(stream: bytes, outcome: Outcome, code: str | None) -> None:
    verdict = classify("llm", exchange(200, stream, stream=_streamed(stream)))
    assert (verdict.outcome, verdict.error_code) == (outcome, code)


def test_gateway_message_reads_error_bodies_and_flattens_text() -> None:
    assert gateway_message(b'{"error":{"message":"bad model"}}') == "bad model"
    assert gateway_message(b"<html>\n  <b>502</b>\n</html>") == "<html> <b>502</b> </html>"
    assert gateway_message(b"") == "(empty body)"
    assert len(gateway_message(b"x" * 1000)) == 300


def test_a_redirect_without_a_webhook_request_is_never_posted() -> None:
    assert classify("text-to-image", exchange(302, b"", hits=0)).outcome is Outcome.UNROUTED
