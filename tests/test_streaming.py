"""The LLM stream meter: time to first token, tokens per second, and how a stream ended."""

from __future__ import annotations

import pytest

from ai_job_tester.domain.streaming import StreamMeter


def chunk(content: str, finish: str = "") -> bytes:
    return (
        b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"'
        + content.encode()
        + b'"},"finish_reason":"'
        + finish.encode()
        + b'"}]}\n\n'
    )


def test_first_token_time_and_rate_come_from_when_bytes_arrived() -> None:
    meter = StreamMeter(started=10.0)
    meter.feed(b": keep-alive\n\n", now=10.1)  # not a token
    meter.feed(chunk("Hel"), now=10.5)
    meter.feed(chunk("lo") + chunk(" there"), now=11.0)
    meter.feed(chunk("", finish="stop"), now=11.5)
    stats = meter.stats()
    assert stats.first_token_at == 0.5 and stats.tokens == 3 and stats.finished and stats.error is None
    assert stats.generation_seconds == 1.0 and stats.tokens_per_second == 2.0


def test_lines_split_across_reads_are_joined() -> None:
    meter = StreamMeter(started=0.0)
    whole = chunk("a") + chunk("", finish="length")
    meter.feed(whole[:20], now=1.0)
    meter.feed(whole[20:], now=2.0)
    stats = meter.stats()
    assert stats.tokens == 1 and stats.first_token_at == 2.0 and stats.finished


def test_usage_counts_tokens_when_the_stream_reports_them() -> None:
    meter = StreamMeter(started=0.0)
    meter.feed(chunk("x"), now=1.0)
    meter.feed(b'data: {"choices":[{"delta":{},"finish_reason":"stop"}],"usage":{"completion_tokens":9}}\n', now=3.0)
    stats = meter.stats()
    assert stats.tokens == 9 and stats.tokens_per_second == 4.0


def test_an_error_event_and_garbage_are_noted_not_raised() -> None:
    meter = StreamMeter(started=0.0)
    meter.feed(b"data: {not json\n", now=0.5)
    meter.feed(b'data: {"error":{"message":"out of memory"}}\n', now=1.0)
    stats = meter.stats()
    assert stats.error == "out of memory" and not stats.finished and stats.first_token_at is None


def test_a_line_without_end_cannot_grow_memory_without_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ai_job_tester.domain.streaming.MAX_LINE_BYTES", 100)
    meter = StreamMeter(started=0.0)
    for _ in range(10):
        meter.feed(b"x" * 50, now=1.0)
    assert meter.stats().error == "a stream line longer than 100 bytes"
