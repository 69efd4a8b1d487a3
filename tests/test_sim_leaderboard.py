"""The simulated leaderboard answers as the real one does (livepeer-contract.md §7.1), over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest

from ai_job_tester.sandbox import SimLeaderboard

SECRET = "k"
ROW: dict[str, Any] = {
    "region": "FRA", "orchestrator": "0x" + "a" * 40, "success_rate": 1, "round_trip_time": 1.5, "errors": [],
    "timestamp": 1_700_000_000, "model": "m", "pipeline": "Text to image", "model_is_warm": True,
    "input_parameters": "{}", "response_payload": "{}",
}  # fmt: skip


def post(board: SimLeaderboard, body: bytes | dict[str, Any], signature: str | None = None) -> httpx.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    sig = hmac.new(SECRET.encode(), data, hashlib.sha256).hexdigest() if signature is None else signature
    return httpx.post(board.post_stats_url, content=data, headers={"Authorization": sig})


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"errors": [{"error_code": "500", "message": "a\x00b", "count": 1}]}, 500),  # JSONB refuses NUL
        ({"response_payload": "\x00"}, 500),
        ({"orchestrator": "0x" + "a" * 55}, 500),  # VARCHAR(56)
        ({"region": "fra"}, 400),
        ({"region": "XXX"}, 400),
        ({"timestamp": 1.5}, 400),
        ({"round_trip_time": "1.5"}, 400),
    ],
)
def test_rows_the_real_database_refuses_are_refused_with_its_status_and_an_ok_after_the_error(
    board: SimLeaderboard, change: dict[str, Any], status: int
) -> None:
    reply = post(board, {**ROW, **change})
    assert reply.status_code == status
    assert reply.text.startswith('{"error":') and reply.text.endswith("\nok")
    assert board.rows == []


def test_a_bad_signature_is_403_and_extra_fields_and_null_errors_are_accepted(board: SimLeaderboard) -> None:
    assert post(board, ROW, signature="sha256=" + "0" * 64).status_code == 403
    assert post(board, {**ROW, "errors": None, "unknown": 1}).text == "ok"
    assert len(board.rows) == 1


def test_a_lone_surrogate_is_stored_as_a_replacement_character(board: SimLeaderboard) -> None:
    body = json.dumps(ROW).replace('"m"', '"m\\ud800"').encode()
    assert post(board, body).text == "ok"
    assert board.rows[0].model == "m\ufffd"


def test_a_transcoding_only_region_answers_ok_and_stores_nothing(board: SimLeaderboard) -> None:
    assert post(board, {**ROW, "region": "NYC"}).text == "ok"
    assert board.rows == [] and len(board.dropped) == 1


def test_the_regions_are_the_real_twenty_six_entries() -> None:
    document = SimLeaderboard(SECRET).regions_document()["regions"]
    assert len(document) == 26
    assert sorted(r["id"] for r in document if r["type"] == "ai") == ["FRA", "GLOBAL", "LAX", "MDW"]
    assert sum(1 for r in document if r["type"] == "transcoding") == 22


def test_windows_count_rows_by_arrival_not_by_their_timestamp(board: SimLeaderboard) -> None:
    """A row measured long ago but delivered now counts as now: the reason late rows are retired."""
    assert post(board, {**ROW, "timestamp": 1}).text == "ok"
    now = time.time()
    assert board.aggregated_stats("Text to image", "m", None, since=now - 60, until=now + 60) != {}
    assert board.aggregated_stats("Text to image", "m", None, since=0, until=now - 3600) == {}


def test_only_failures_with_a_zero_round_trip_make_aggregated_stats_fail_on_nan(board: SimLeaderboard) -> None:
    assert post(board, {**ROW, "success_rate": 0, "round_trip_time": 0}).text == "ok"
    reply = httpx.get(f"{board.url}/api/aggregated_stats", params={"pipeline": "Text to image", "model": "m"})
    assert reply.status_code == 500 and "NaN" in reply.text
