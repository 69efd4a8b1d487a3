"""The gate's verdict: when a cycle's failures point at the tester, not the orchestrators."""

from __future__ import annotations

from ai_job_tester.domain.gate import tester_fault as verdict_on
from ai_job_tester.domain.outcome import Outcome, Verdict
from ai_job_tester.domain.results import JobResult

from .test_scores import result


def test_no_pass_and_enough_distinct_orchestrators_blame_the_tester() -> None:
    failed = [result(o, 1.0, passed=False) for o in "abcde"]
    assert verdict_on(failed, 5) is not None
    assert verdict_on(failed[:4], 5) is None  # too few to tell
    assert verdict_on([*failed, result("a", 1.0, model="other", passed=False)], 6) is None  # distinct, not jobs


def test_a_single_pass_clears_the_tester() -> None:
    jobs = [result(o, 1.0, passed=False) for o in "abcdef"] + [result("g", 1.0)]
    assert verdict_on(jobs, 5) is None


def test_unattributable_jobs_are_no_evidence_either_way() -> None:
    unrouted = [JobResult(job=result(o, 1.0).job, verdict=Verdict(Outcome.UNROUTED), started_at=0) for o in "abcde"]
    assert verdict_on(unrouted, 5) is None


def test_zero_turns_the_gate_off() -> None:
    assert verdict_on([result(o, 1.0, passed=False) for o in "abcde"], 0) is None
