"""Judging a finished live video run: passed, failed, busy, or not attributable. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import live
from .outcome import Outcome, Verdict
from .plan import PlannedJob
from .results import JobResult
from .rows import clean_payload


@dataclass(frozen=True, slots=True)
class LiveRun:
    """How one live test went: its measurements, and why it failed or was busy, if it was."""

    stats: live.LiveStats
    error: str | None
    busy: bool
    elapsed: float  # from the push's start to the end of the test
    params: dict[str, Any]
    started_at: int  # Unix seconds


def live_params(job: PlannedJob) -> dict[str, Any]:
    variant = job.variant.parameters if job.variant is not None else {}
    return {**job.request.parameters, **variant}


def live_result(job: PlannedJob, run: LiveRun) -> JobResult:
    """Judge a finished live run: passed, failed, or not attributable to the orchestrator."""
    stats = run.stats
    passed = run.error is None and stats.frames > 0
    if passed:
        verdict = Verdict(Outcome.PASSED)
    elif run.error is not None and live.NOT_PINNED in run.error:
        # The gateway found no orchestrator to pin the stream to: nothing ran on this one.
        verdict = Verdict(Outcome.UNROUTED, None, f"the gateway could not pin the stream: {run.error}")
    else:
        code = "NO_OUTPUT" if run.error and run.error.startswith("no output") else "LIVE_ERROR"
        verdict = Verdict(Outcome.FAILED, code, run.error or "")
    return JobResult(
        job=job,
        verdict=verdict,
        started_at=run.started_at,
        # The leaderboard scores a latency: time to first frame, or the time it waited in vain.
        round_trip=stats.time_to_first_frame if passed else run.elapsed,
        input_parameters=json.dumps(run.params, separators=(",", ":"), sort_keys=True),
        response_payload=clean_payload(json.dumps(stats.payload())),
        live=stats,
    )


def busy_result(job: PlannedJob, last: LiveRun | None, now: int) -> JobResult:
    """A live job whose orchestrator stayed full through every pass: reported, never scored."""
    why = last.error if last is not None and last.error else "no idle capacity for this selector"
    return JobResult(
        job=job,
        verdict=Verdict(Outcome.BUSY, None, f"busy through every retry: {why}"),
        started_at=now,
        live=None if last is None else last.stats,
    )
