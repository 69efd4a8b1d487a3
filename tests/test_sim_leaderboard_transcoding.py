"""The simulated leaderboard takes and scores transcoding rows as the real one does (transcoding contract §4)."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from typing import Any

import httpx
import pytest

from ai_job_tester.sandbox import SimLeaderboard

SECRET = "k"
ORCH = "0x" + "b" * 40
# The contract's sample row (leaderboard-serverless docs/sample-json/stream-tester.json), trimmed.
ROW: dict[str, Any] = {
    "region": "FRA", "orchestrator": ORCH, "timestamp": 1_700_000_000, "segments_sent": 15, "segments_received": 30,
    "success_rate": 1, "round_trip_time": 1.9470, "seg_duration": 2.0089, "upload_time": 0.2, "download_time": 0.1,
    "transcode_time": 1.6, "errors": [],
}  # fmt: skip


def post(board: SimLeaderboard, row: dict[str, Any] | bytes, signature: str | None = None) -> httpx.Response:
    data = row if isinstance(row, bytes) else json.dumps(row).encode()
    sig = hmac.new(SECRET.encode(), data, hashlib.sha256).hexdigest() if signature is None else signature
    return httpx.post(board.post_stats_url, content=data, headers={"Authorization": sig})


def stats(board: SimLeaderboard, **params: str) -> Any:
    reply = httpx.get(f"{board.url}/api/aggregated_stats", params=params)
    assert reply.status_code == 200
    return reply.json()


@pytest.mark.parametrize(
    "change",
    [{}, {"model": "m"}, {"pipeline": "Text to image"}, {"model": "", "pipeline": ""}, {"model": None}],
)
def test_a_row_without_both_model_and_pipeline_is_a_transcoding_row(
    board: SimLeaderboard, change: dict[str, Any]
) -> None:
    """models.Stats: AI only when both are non-empty; such rows are stored apart from AI rows."""
    assert post(board, {**ROW, **change}).text == "ok"
    assert board.rows == [] and len(board.transcoding_rows) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"segments_sent": 1.5},
        {"segments_received": "30"},
        {"success_rate": "1"},
        {"round_trip_time": True},
        {"seg_duration": [2]},
        {"upload_time": "0.2"},
        {"transcode_time": {}},
        {"timestamp": 1.5},
        {"errors": "none"},
        {"errors": [{"error_code": "Transcode", "count": 1.5}]},
        {"errors": [{"error_code": 503, "count": 1}]},
        {"model_is_warm": "yes"},  # one decode checks the AI fields too
        {"orchestrator": 5},
    ],
)
def test_a_wrong_json_type_in_a_transcoding_row_is_400_with_ok_after_the_error(
    board: SimLeaderboard, change: dict[str, Any]
) -> None:
    """Go's decoder refuses the whole row; the handler still appends ``ok``."""
    reply = post(board, {**ROW, **change})
    assert reply.status_code == 400
    assert reply.text.startswith('{"error":"json: ') and reply.text.endswith("\nok")
    assert board.transcoding_rows == []


def test_missing_keys_and_nulls_decode_as_zero_values_and_unknown_keys_are_ignored(board: SimLeaderboard) -> None:
    """A minimal row is valid: Go leaves every absent field at zero."""
    body = {"region": "NYC", "orchestrator": ORCH, "errors": None, "upload_time": None, "extra": {"a": 1}}
    assert post(board, body).text == "ok"
    [row] = board.transcoding_rows
    assert (row.segments_sent, row.success_rate, row.round_trip_time, row.timestamp, row.errors) == (0, 0, 0, 0, None)


@pytest.mark.parametrize("region", ["NYC", "SIN", "GLOBAL", "FRA"])
def test_transcoding_rows_are_stored_for_any_region_with_the_transcoding_type(
    board: SimLeaderboard, region: str
) -> None:
    """Every seeded region has the transcoding type: AI ones too."""
    assert post(board, {**ROW, "region": region}).text == "ok"
    assert [r.region for r in board.transcoding_rows] == [region]


@pytest.mark.parametrize("region", ["XXX", "nyc", ""])
def test_an_unknown_region_is_400_invalid_region(board: SimLeaderboard, region: str) -> None:
    """The region must exist by name, whatever its type."""
    reply = post(board, {**ROW, "region": region})
    assert (reply.status_code, reply.text) == (400, '{"error":"invalid region"}\nok')


def test_a_region_without_the_transcoding_type_answers_ok_and_stores_nothing() -> None:
    """The insert joins region and job type: no match stores nothing, with no error."""
    board = SimLeaderboard(SECRET, regions={"AIONLY": ("ai",)})
    board.start()
    try:
        assert post(board, {**ROW, "region": "AIONLY"}).text == "ok"
        assert board.transcoding_rows == [] and len(board.dropped) == 1
    finally:
        board.stop()


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"errors": [{"error_code": "Transcode", "message": "a\x00b", "count": 1}]}, 500),
        ({"orchestrator": "0x" + "b" * 55}, 500),
    ],
)
def test_what_postgresql_refuses_is_500_for_transcoding_rows_too(
    board: SimLeaderboard, change: dict[str, Any], status: int
) -> None:
    """NUL in JSONB and VARCHAR(56) fail the insert, however often the row comes."""
    for _ in range(2):
        reply = post(board, {**ROW, **change})
        assert reply.status_code == status and reply.text.endswith("\nok")
    assert board.transcoding_rows == []


def test_a_bad_signature_is_403(board: SimLeaderboard) -> None:
    """Transcoding rows are signed exactly as AI rows."""
    assert post(board, ROW, signature="0" * 64).status_code == 403
    assert board.transcoding_rows == []


def test_the_sample_row_scores_0_644(board: SimLeaderboard) -> None:
    """round_trip_score = 1 - e^(-seg/rtt): the contract's example, 2.0089 / 1.9470 -> 0.644."""
    assert post(board, ROW).text == "ok"
    for params in ({}, {"job_type": "transcoding", "model": "m", "pipeline": "p"}, {"orchestrator": ORCH.upper()}):
        entry = stats(board, **params)[ORCH]["FRA"]
        assert round(entry["round_trip_score"], 3) == 0.644
        assert entry["score"] == pytest.approx(entry["round_trip_score"]) and entry["success_rate"] == 1


def test_failed_rows_lower_the_rate_and_the_average_round_trip(board: SimLeaderboard) -> None:
    """Missing values count as 0: a failure with RTT 0 raises round_trip_score while it halves the rate."""
    assert post(board, {**ROW, "success_rate": 1, "round_trip_time": 2.0, "seg_duration": 2.0}).text == "ok"
    assert post(board, {"region": "FRA", "orchestrator": ORCH, "seg_duration": 2.0}).text == "ok"
    entry = stats(board, region="FRA")[ORCH]["FRA"]
    assert entry["success_rate"] == 0.5
    assert entry["round_trip_score"] == pytest.approx(1 - math.exp(-2.0 / 1.0))
    assert entry["score"] == pytest.approx(0.5 * (1 - math.exp(-2.0)))


def test_only_failures_score_zero_instead_of_dividing_by_zero(board: SimLeaderboard) -> None:
    """An average RTT of 0 gives round_trip_score 0 (no NaN for transcoding)."""
    assert post(board, {"region": "NYC", "orchestrator": ORCH, "seg_duration": 2.0}).text == "ok"
    assert stats(board) == {ORCH: {"NYC": {"success_rate": 0.0, "round_trip_score": 0.0, "score": 0.0}}}


def test_transcoding_and_ai_scores_stay_apart(board: SimLeaderboard) -> None:
    """An AI query sees no transcoding rows, and the transcoding query no AI rows."""
    ai = {**ROW, "model": "m", "pipeline": "Text to image", "model_is_warm": True, "input_parameters": "{}",
          "response_payload": "{}", "orchestrator": "0x" + "c" * 40}  # fmt: skip
    assert post(board, ai).text == "ok" and post(board, ROW).text == "ok"
    assert list(stats(board)) == [ORCH]
    assert list(stats(board, model="m", pipeline="Text to image")) == ["0x" + "c" * 40]


def test_windows_use_the_insert_time(board: SimLeaderboard) -> None:
    """A row's own timestamp does not place it in a window; its arrival does."""
    assert post(board, {**ROW, "timestamp": 1}).text == "ok"
    now = time.time()
    assert board.transcoding_stats(since=now - 60, until=now + 60) != {}
    assert board.transcoding_stats(since=0, until=now - 3600) == {}


def test_raw_stats_return_the_stored_payload_without_zero_fields(board: SimLeaderboard) -> None:
    """The stored JSONB is the re-encoded struct: omitempty drops zero-valued fields."""
    assert post(board, {**ROW, "upload_time": 0, "errors": None}).text == "ok"
    reply = httpx.get(f"{board.url}/api/raw_stats", params={"orchestrator": ORCH})
    [payload] = reply.json()["FRA"]
    assert "upload_time" not in payload and "errors" not in payload and "event_time" not in payload
    assert payload["segments_received"] == 30
    assert httpx.get(f"{board.url}/api/raw_stats").status_code == 400
