"""The result of one job, as data: what ran, how it ended, and what the leaderboard said."""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import rows
from .delivery import Delivery
from .live import LiveStats
from .outcome import Outcome, Verdict
from .plan import JobKind, PlannedJob
from .transcode import TranscodeStats


@dataclass(frozen=True, slots=True)
class JobResult:
    """One job's measurement; ``round_trip`` is None for a job that never ran."""

    job: PlannedJob
    verdict: Verdict
    started_at: int  # Unix seconds
    round_trip: float | None = None
    status: int | None = None
    input_parameters: str = ""
    response_payload: str = ""
    delivery: Delivery | None = None  # None: not posted (by choice, or not postable)
    output_check_seconds: float | None = None  # the media download, never part of round_trip
    fingerprint: str | None = None  # the output's SHA-256 when it was compared for replays (domain.fingerprints)
    time_to_first_token: float | None = None  # LLM streams only
    tokens_per_second: float | None = None
    live: LiveStats | None = None  # live video only
    transcode: TranscodeStats | None = None  # transcoding only: what its row carries

    @property
    def outcome(self) -> Outcome:
        return self.verdict.outcome

    @property
    def scored(self) -> bool:
        """A passed or failed job with a measured round trip: what the leaderboard scores."""
        return self.outcome.postable and self.round_trip is not None

    def delivered(self, delivery: Delivery) -> JobResult:
        return replace(self, delivery=delivery)


def not_run(job: PlannedJob, *, at: int, why: str) -> JobResult:
    """Record a planned job the cycle never started."""
    return JobResult(job=job, verdict=Verdict(Outcome.NOT_RUN, None, why), started_at=at)


def build_row(result: JobResult, region: str) -> rows.Row:
    """Build the leaderboard row of a postable result: an AI row, or a transcoding row for a transcoding job."""
    if not result.scored or result.round_trip is None:
        raise ValueError(f"a {result.outcome} job is never posted")
    if result.job.kind is JobKind.TRANSCODING:
        return _transcoding_row(result, region)
    verdict = result.verdict
    passed = result.outcome is Outcome.PASSED
    errors = [] if passed else [rows.ErrorEntry(error_code=verdict.error_code or "FAILED", message=verdict.message)]
    return rows.LeaderboardRow(
        region=region,
        orchestrator=result.job.orchestrator.address,
        success_rate=1.0 if passed else 0.0,
        round_trip_time=result.round_trip,
        errors=errors,
        timestamp=result.started_at,
        model=result.job.model,
        pipeline=result.job.capability,
        model_is_warm=result.job.warm,
        input_parameters=result.input_parameters,
        response_payload=result.response_payload,
    )


def _transcoding_row(result: JobResult, region: str) -> rows.TranscodingRow:
    stats = result.transcode
    if stats is None:
        raise ValueError("a transcoding job without its stream's figures cannot be posted")
    return rows.TranscodingRow(
        region=region,
        orchestrator=result.job.orchestrator.address,
        timestamp=result.started_at,
        segments_sent=stats.segments_sent,
        segments_received=stats.segments_received,
        success_rate=stats.success_rate,
        seg_duration=stats.seg_duration,
        upload_time=stats.upload,
        download_time=stats.download,
        transcode_time=stats.transcode,
        round_trip_time=stats.round_trip,
        errors=[rows.ErrorEntry(error_code=e.code, message=e.message, count=e.count) for e in stats.errors],
    )
