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
