"""The cycle's report: counters, per-job entries, and the JSON the ``--report`` file holds. Pure."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .outcome import Outcome
from .plan import Plan
from .results import JobResult


@dataclass(frozen=True, slots=True)
class Totals:
    """The Go tester's counters, plus the ones it lacked."""

    expected: int
    run: int
    passed: int
    failed: int
    unrouted: int
    not_run: int
    skipped: int
    posted: int
    post_failed: int

    @property
    def tester_errors(self) -> int:
        # Jobs whose result is missing or unattributable through the tester's side.
        return self.unrouted + self.not_run


@dataclass(frozen=True, slots=True)
class CycleReport:
    """Everything one cycle found; ``stopped`` says why it ended early, if it did."""

    region: str
    started_at: float
    finished_at: float
    plan: Plan
    results: tuple[JobResult, ...]
    stopped: str | None = None
    posting: bool = True
    notes: tuple[str, ...] = field(default=())

    def totals(self) -> Totals:
        outcomes = Counter(result.outcome for result in self.results)
        deliveries = [result.delivery for result in self.results if result.delivery is not None]
        return Totals(
            expected=len(self.plan.jobs),
            run=len(self.results) - outcomes[Outcome.NOT_RUN],
            passed=outcomes[Outcome.PASSED],
            failed=outcomes[Outcome.FAILED],
            unrouted=outcomes[Outcome.UNROUTED],
            not_run=outcomes[Outcome.NOT_RUN],
            skipped=len(self.plan.skipped),
            posted=sum(1 for d in deliveries if d.delivered),
            post_failed=sum(1 for d in deliveries if not d.delivered),
        )


def to_json(report: CycleReport) -> dict[str, Any]:
    """Return the ``--report`` document: the Go tester's counters first, then one entry per job."""
    totals = report.totals()
    return {
        "total_jobs": totals.run,
        "total_jobs_tester_error": totals.tester_errors,
        "total_jobs_passed": totals.passed,
        "total_jobs_failed": totals.failed,
        "expected_total_jobs": totals.expected,
        "total_jobs_unrouted": totals.unrouted,
        "total_jobs_not_run": totals.not_run,
        "total_skipped": totals.skipped,
        "total_posted": totals.posted,
        "total_post_failed": totals.post_failed,
        "region": report.region,
        "started_at": round(report.started_at, 3),
        "finished_at": round(report.finished_at, 3),
        "stopped": report.stopped,
        "posting": report.posting,
        "notes": list(report.notes),
        "jobs": [_job_entry(result) for result in report.results],
        "skipped": [
            {"orchestrator": s.orchestrator, "pipeline": s.capability, "model": s.model, "reason": s.reason}
            for s in report.plan.skipped
        ],
    }


def _job_entry(result: JobResult) -> dict[str, Any]:
    delivery = result.delivery
    return {
        "orchestrator": result.job.orchestrator.address,
        "service_uri": result.job.orchestrator.service_uri,
        "pipeline": result.job.capability,
        "route": result.job.route,
        "model": result.job.model,
        "warm": result.job.warm,
        "outcome": result.outcome.value,
        "round_trip_time": result.round_trip,
        "status": result.status,
        "error_code": result.verdict.error_code,
        "message": result.verdict.message,
        "timestamp": result.started_at,
        "posted": None if delivery is None else delivery.delivered,
        "post_error": None if delivery is None or delivery.delivered else delivery.message,
    }
