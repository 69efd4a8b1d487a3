"""Leaderboard rows: the contract's exact fields and JSON types, signed over the exact bytes."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from ai_job_tester.domain.discovery import Orchestrator
from ai_job_tester.domain.outcome import Outcome, Verdict
from ai_job_tester.domain.plan import Pipeline, PlannedJob
from ai_job_tester.domain.results import JobResult, build_row, not_run
from ai_job_tester.domain.rows import (
    CAPTURE_DISABLED_PAYLOAD,
    TRUNCATION_MARKER,
    LeaderboardRow,
    clean_payload,
    encode,
    response_payload,
    sign,
)

PIPELINE = Pipeline("T2I", "text-to-image", "application/json", {}, "model_id", "image", None, 120.0)
JOB = PlannedJob(Orchestrator("0xaaaa", "https://a:8935"), "Text to image", "sdxl", True, PIPELINE)


def result(verdict: Verdict, **kw: object) -> JobResult:
    return JobResult(
        job=JOB,
        verdict=verdict,
        started_at=1_700_000_000,
        round_trip=1.25,
        input_parameters='{"model_id":"sdxl"}',
        response_payload="{}",
        **kw,
    )  # type: ignore[arg-type]


def test_a_passing_row_has_exactly_the_contracts_fields_and_types() -> None:
    body = json.loads(encode(build_row(result(Verdict(Outcome.PASSED)), "FRA")))
    assert body == {
        "region": "FRA",
        "orchestrator": "0xaaaa",
        "success_rate": 1.0,
        "round_trip_time": 1.25,
        "errors": [],
        "timestamp": 1_700_000_000,
        "model": "sdxl",
        "pipeline": "Text to image",
        "model_is_warm": True,
        "input_parameters": '{"model_id":"sdxl"}',
        "response_payload": "{}",
    }
    assert isinstance(body["timestamp"], int)


def test_a_failed_row_carries_one_error_entry() -> None:
    row = build_row(result(Verdict(Outcome.FAILED, "503", "Service Unavailable Error")), "FRA")
    body = json.loads(encode(row))
    assert body["success_rate"] == 0
    assert body["errors"] == [{"error_code": "503", "message": "Service Unavailable Error", "count": 1}]


@pytest.mark.parametrize("outcome", [Outcome.UNROUTED, Outcome.NOT_RUN])
def test_unattributable_results_cannot_become_rows(outcome: Outcome) -> None:
    with pytest.raises(ValueError, match="never posted"):
        build_row(result(Verdict(outcome)), "FRA")
    with pytest.raises(ValueError):
        build_row(not_run(JOB, at=1, why="stopped"), "FRA")


def test_signature_is_hex_hmac_sha256_of_the_exact_bytes() -> None:
    body = encode(build_row(result(Verdict(Outcome.PASSED)), "FRA"))
    assert sign(body, "k") == hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert sign(body, "k") != sign(body + b" ", "k")


def test_capture_off_posts_the_placeholder_only_for_passes() -> None:
    assert response_payload(b'{"images":[]}', capture=False, passed=True) == CAPTURE_DISABLED_PAYLOAD
    assert response_payload(b'{"error":"x"}', capture=False, passed=False) == '{"error":"x"}'
    assert response_payload(b'{"ok":1}', capture=True, passed=True) == '{"ok":1}'


def test_payload_loses_nul_characters_and_is_capped_with_a_marker() -> None:
    assert clean_payload("a\x00b") == "ab"
    capped = clean_payload("x" * 100, limit=50)
    assert len(capped) == 50 and capped.endswith(TRUNCATION_MARKER)


HOSTILE = {
    "nul": "a\x00b",
    "lone surrogate": "a\ud800b",
    "invalid utf-8 decoded": b"a\xff\xfeb".decode("utf-8", errors="replace"),
    "controls": "a\x01\x1b[31mred\x7f\x9b",
    "markup": "x[/y][bold]z",
    "megabyte": "m" * (1 << 20),
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_every_string_of_a_row_is_storable_by_the_real_leaderboard_whatever_came_in(text: str) -> None:
    from ai_job_tester.sandbox import SimLeaderboard

    job = PlannedJob(Orchestrator("0x" + "a" * 40, "https://a:8935"), text, text, True, PIPELINE)
    failed = JobResult(job=job, verdict=Verdict(Outcome.FAILED, text, text), started_at=1, round_trip=1.0,
                       input_parameters=text, response_payload=text)  # fmt: skip
    body = encode(build_row(failed, "FRA"))
    assert b"\\u0000" not in body and b"\x00" not in body
    assert len(body) < 700 * 1024  # every field is capped
    board = SimLeaderboard("k")
    assert board.accept(body, sign(body, "k")) == (200, "ok")
    stored = board.rows[0]
    assert stored.model.startswith(text[:1])  # kept, not blanked


def test_a_row_read_back_from_an_old_journal_is_made_storable_too() -> None:
    """Rows stored by an earlier version may hold NUL: they must not wedge delivery for ever."""
    raw = json.loads(encode(build_row(result(Verdict(Outcome.FAILED, "500", "x")), "FRA")))
    raw["errors"][0]["message"] = "bad\x00message\ud800"
    row = LeaderboardRow.model_validate(raw)
    assert row.errors[0].message == "badmessage\ufffd"
    encode(row)  # does not raise
