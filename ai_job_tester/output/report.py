"""The cycle's report: counters, per-job entries, and the JSON the ``--report`` file holds. Pure."""

from __future__ import annotations

import signal
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..domain.delivery import Delivered
from ..domain.fingerprints import REPLAYED_OUTPUT, Tally
from ..domain.outcome import Outcome
from ..domain.plan import Plan, PlannedJob
from ..domain.results import JobResult
from ..domain.scores import Score, key_of, rollup, score_cycle


@dataclass(frozen=True, slots=True)
class Totals:
    """The Go tester's counters, plus the ones it lacked."""

    expected: int
    run: int
    passed: int
    failed: int
    unrouted: int
    rejected: int
    not_run: int
    deferred: int
    busy: int
    skipped: int
    posted: int
    post_failed: int
    post_rejected: int
    held: int
    outputs_checked: int  # passing outputs compared for replays (fresh requests only)
    replays: int  # jobs failed REPLAYED_OUTPUT

    @property
    def tester_errors(self) -> int:
        # Jobs whose result is missing or unattributable through the tester's side.
        return self.unrouted + self.rejected + self.not_run


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
    interrupted: int | None = None  # the signal number that stopped the cycle
    earlier_rows: Delivered = field(default_factory=Delivered)  # left by earlier runs, sent first
    late_rows: Delivered = field(default_factory=Delivered)  # sent by the closing flush
    undelivered: int = 0  # rows still in the outbox at the end
    posting_stopped: str | None = None
    held_back: str | None = None  # why the health gate kept this cycle's failure rows back
    lane_failures: tuple[str, ...] = ()  # lanes whose gateway failed; others took their jobs
    lanes: int = 1  # how many lanes the cycle ran: only lanes left standing can take a failed lane's jobs
    retired: int = 0  # rows too old to post as current, moved to archive.jsonl unsent
    replay_tally: Tally = field(default_factory=Tally)  # outputs compared and replays, over the state dir's life

    @property
    def rows_rejected(self) -> int:
        """Rows the leaderboard refused with HTTP 400 during this run (now in ``rejected/``)."""
        return self.earlier_rows.rejected + self.late_rows.rejected + self.totals().post_rejected

    def totals(self) -> Totals:
        outcomes = Counter(result.outcome for result in self.results)
        deliveries = [result.delivery for result in self.results if result.delivery is not None]
        return Totals(
            expected=len(self.plan.jobs),
            run=len(self.results) - outcomes[Outcome.NOT_RUN] - outcomes[Outcome.DEFERRED] - outcomes[Outcome.BUSY],
            passed=outcomes[Outcome.PASSED],
            failed=outcomes[Outcome.FAILED],
            unrouted=outcomes[Outcome.UNROUTED],
            rejected=outcomes[Outcome.REJECTED],
            not_run=outcomes[Outcome.NOT_RUN],
            deferred=outcomes[Outcome.DEFERRED],
            busy=outcomes[Outcome.BUSY],
            skipped=len(self.plan.skipped),
            posted=sum(1 for d in deliveries if d.delivered),
            post_failed=sum(1 for d in deliveries if not d.delivered and not d.held),
            held=sum(1 for d in deliveries if d.held),
            post_rejected=sum(1 for d in deliveries if d.status == 400),
            outputs_checked=sum(1 for result in self.results if result.fingerprint is not None),
            replays=sum(1 for result in self.results if result.verdict.error_code == REPLAYED_OUTPUT),
        )


def to_json(report: CycleReport) -> dict[str, Any]:
    """Return the ``--report`` document: the Go tester's counters first, then one entry per job."""
    totals = report.totals()
    scores = score_cycle(report.results)
    document = {
        "total_jobs": totals.run,
        "total_jobs_tester_error": totals.tester_errors,
        "total_jobs_passed": totals.passed,
        "total_jobs_failed": totals.failed,
        "expected_total_jobs": totals.expected,
        "total_jobs_unrouted": totals.unrouted,
        "total_jobs_rejected": totals.rejected,
        "total_jobs_not_run": totals.not_run,
        "total_jobs_deferred": totals.deferred,
        "total_jobs_busy": totals.busy,
        "total_skipped": totals.skipped,
        "total_posted": totals.posted,
        "total_post_failed": totals.post_failed,
        "total_held": totals.held,
        "total_outputs_checked": totals.outputs_checked,
        "total_replayed_outputs": totals.replays,
        "region": report.region,
        "started_at": round(report.started_at, 3),
        "finished_at": round(report.finished_at, 3),
        "stopped": report.stopped,
        "interrupted": None if report.interrupted is None else signal.Signals(report.interrupted).name,
        "posting": report.posting,
        "posting_stopped": report.posting_stopped,
        "earlier_rows_delivered": report.earlier_rows.delivered,
        "rows_rejected_by_leaderboard": report.rows_rejected,
        "undelivered": report.undelivered,
        "rows_retired": report.retired,
        "held_back": report.held_back,
        "lane_failures": list(report.lane_failures),
        "jobs": [_job_entry(result, scores.get(key_of(result))) for result in report.results],
        "transcoding": [
            _transcoding_entry(r, scores[key_of(r)]) for r in report.results if r.transcode is not None and r.scored
        ],
        "orchestrators": [
            {
                "orchestrator": r.orchestrator,
                "warm": r.warm,
                "jobs": r.jobs,
                "passed": r.passed,
                "mean_score": round(r.mean_score, 6),
            }
            for r in rollup(report.results, scores)
        ],
        "skipped": [
            {"orchestrator": s.orchestrator, "pipeline": s.capability, "model": s.model, "reason": s.reason}
            for s in report.plan.skipped
        ],
    }
    if not report.results:  # a dry run: the plan, in the order it would run (the terminal shows a screenful)
        document["planned"] = [_planned_entry(job) for job in report.plan.jobs]
    return document


def _transcoding_entry(result: JobResult, score: Score) -> dict[str, Any]:
    """One orchestrator's transcoding row of this cycle, with the leaderboard's score of it."""
    assert result.transcode is not None
    return {
        "orchestrator": result.job.orchestrator.address,
        **result.transcode.payload(),
        "round_trip_score": round(score.round_trip_score, 6),
        "score": round(score.score, 6),
    }


def _planned_entry(job: PlannedJob) -> dict[str, Any]:
    return {
        "orchestrator": job.orchestrator.address,
        "service_uri": job.orchestrator.service_uri,
        "pipeline": job.capability,
        "route": job.route,
        "model": job.model,
        "warm": job.warm,
        "variant": None if job.variant is None else job.variant.id,
    }


def _job_entry(result: JobResult, score: Score | None) -> dict[str, Any]:
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
        "output_check_seconds": result.output_check_seconds,
        "output_fingerprint": result.fingerprint,
        "time_to_first_token": result.time_to_first_token,
        "tokens_per_second": result.tokens_per_second,
        "variant": None if result.job.variant is None else result.job.variant.id,
        "live": None if result.live is None else result.live.payload(),
        "transcoding": None if result.transcode is None else result.transcode.payload(),
        "success_rate": None if score is None else score.success_rate,
        "round_trip_score": None if score is None else round(score.round_trip_score, 6),
        "score": None if score is None else round(score.score, 6),
        "posted": None if delivery is None else delivery.delivered,
        "held": delivery is not None and delivery.held,
        "post_error": None if delivery is None or delivery.delivered or delivery.held else delivery.message,
    }
