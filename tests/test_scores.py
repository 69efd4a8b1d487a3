"""Scores: the leaderboard's formula applied to this cycle, checked by hand on a small table."""

from __future__ import annotations

import pytest

from ai_job_tester.domain.discovery import Orchestrator
from ai_job_tester.domain.outcome import Outcome, Verdict
from ai_job_tester.domain.plan import Pipeline, PlannedJob
from ai_job_tester.domain.results import JobResult, not_run
from ai_job_tester.domain.scores import Rollup, Score, rollup, score_cycle

PIPELINE = Pipeline("T2I", "text-to-image", "application/json", {}, "model_id", "image", None, 120.0)


def result(orch: str, rtt: float, *, passed: bool = True, model: str = "m", warm: bool = True) -> JobResult:
    job = PlannedJob(Orchestrator(orch, f"https://{orch}"), "Text to image", model, warm, PIPELINE)
    verdict = Verdict(Outcome.PASSED) if passed else Verdict(Outcome.FAILED, "500", "x")
    return JobResult(job=job, verdict=verdict, started_at=0, round_trip=rtt)


def test_a_small_table_scored_by_hand() -> None:
    # Passing round trips 1, 2 and 4 s: the median is 2 s.
    results = [result("a", 1.0), result("b", 2.0), result("c", 4.0), result("d", 0.5, passed=False)]
    scores = score_cycle(results)
    # a: 0.65 + 0.35 * 0.8 ** 0.5 = 0.65 + 0.35 * 0.894427191 = 0.963049517
    assert scores[("a", "Text to image", "m")].score == pytest.approx(0.963049517)
    # b: at the median, 0.8: 0.65 + 0.28 = 0.93
    assert scores[("b", "Text to image", "m")] == Score(1.0, pytest.approx(0.8), pytest.approx(0.93))  # type: ignore[arg-type]
    # c: 0.65 + 0.35 * 0.8 ** 2 = 0.65 + 0.224 = 0.874
    assert scores[("c", "Text to image", "m")].score == pytest.approx(0.874)
    # d failed: 0, whatever its round trip
    assert scores[("d", "Text to image", "m")].score == 0.0


def test_each_model_has_its_own_median_and_unposted_jobs_are_not_scored() -> None:
    results = [result("a", 1.0, model="x"), result("a", 9.0, model="y"), not_run(result("b", 1).job, at=0, why="-")]
    scores = score_cycle(results)
    assert scores[("a", "Text to image", "x")].score == pytest.approx(0.93)
    assert scores[("a", "Text to image", "y")].score == pytest.approx(0.93)
    assert ("b", "Text to image", "m") not in scores


def test_rollup_counts_warm_and_cold_apart() -> None:
    results = [result("a", 1.0, model="w"), result("a", 1.0, model="c", warm=False, passed=False),
               result("a", 1.0, model="w2")]  # fmt: skip
    assert rollup(results, score_cycle(results)) == [
        Rollup("a", True, 2, 2, pytest.approx(0.93)),  # type: ignore[arg-type]
        Rollup("a", False, 1, 0, 0.0),
    ]
