"""Judging a finished transcoding stream: passed, failed, or not the orchestrator's to answer for. Pure.

- The gateway never asked the webhook during the stream: it may have transcoded anywhere
  (a mainline gateway's 60 s cache, a gateway without the token): **unrouted**, not posted.
- The gateway refused the push itself (its session limit, a header or segment it rejects):
  **rejected**, not posted; no orchestrator saw the segment.
- Otherwise the stream is the orchestrator's: **passed** when every rendition of every
  segment came back valid, else **failed**, with the share that did in ``success_rate``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .outcome import TESTER_MODE_HINT, Outcome, Verdict
from .plan import PlannedJob, TranscodeSpec
from .results import JobResult
from .rows import clean_payload
from .transcode import SegmentResult, TranscodeStats, summarise


@dataclass(frozen=True, slots=True)
class TranscodeRun:
    """How one stream went: every segment judged, and how often the gateway asked the webhook meanwhile."""

    manifest_id: str
    segments: tuple[SegmentResult, ...]
    webhook_requests: int  # from before the first segment to the last reply
    started_at: int  # Unix seconds


def transcode_result(job: PlannedJob, spec: TranscodeSpec, run: TranscodeRun) -> JobResult:
    """Judge a finished stream; its ``transcode`` stats make the transcoding row."""
    stats = summarise(run.manifest_id, run.segments, profiles=len(spec.profiles), seconds=spec.segment.duration)
    return JobResult(
        job=job,
        verdict=_verdict(run, stats),
        started_at=run.started_at,
        round_trip=stats.round_trip,
        status=next((r.status for r in run.segments if r.status is not None), None),
        input_parameters=spec.header,
        response_payload=clean_payload(json.dumps(stats.payload())),
        transcode=stats,
    )


def _verdict(run: TranscodeRun, stats: TranscodeStats) -> Verdict:
    refused = next((r.refused for r in run.segments if r.refused), None)
    if refused is not None:
        code = next(code for r in run.segments if r.refused for code, _ in r.errors)
        return Verdict(Outcome.REJECTED, code, refused)
    if run.webhook_requests == 0:
        return Verdict(
            Outcome.UNROUTED,
            None,
            "the gateway never asked the webhook during this stream, so it may have been transcoded anywhere: "
            f"{TESTER_MODE_HINT}; a mainline gateway caches the webhook's answer for 60 s",
        )
    if stats.segments_sent and stats.success_rate >= 1.0:
        return Verdict(Outcome.PASSED)
    first = stats.errors[0] if stats.errors else None
    received = f"{stats.segments_received} of {stats.profiles * stats.segments_sent} renditions"
    if first is None:
        return Verdict(Outcome.FAILED, "FAILED", received)
    return Verdict(Outcome.FAILED, first.code, f"{received}; {first.message}")
