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


def test_an_output_shared_by_three_orchestrators_is_the_gateways_not_theirs() -> None:
    from dataclasses import replace

    from ai_job_tester.domain.gate import shared_outputs

    def with_print(result: JobResult, digest: str, replayed: bool) -> JobResult:
        verdict = Verdict(Outcome.FAILED, "REPLAYED_OUTPUT", "same") if replayed else result.verdict
        return replace(result, fingerprint=digest, verdict=verdict)

    a, b, c = (result(f"0x{n}", 1.0) for n in "abc")
    assert shared_outputs([with_print(a, "d", False), with_print(b, "d", True)]) == {}
    three = [with_print(a, "d", False), with_print(b, "d", True), with_print(c, "d", True)]
    assert shared_outputs(three) == {"d": 3}
    one_cacher = [with_print(a, "e", False), with_print(replace(a, started_at=2), "e", True)]
    assert shared_outputs(one_cacher) == {}
