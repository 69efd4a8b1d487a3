"""One transcoding job in a lane: a fresh stream of segments pushed one after another, then judged.

The lane has already pointed the webhook at the orchestrator (``Lane.point_at``) and
points it back only after this returns, so the list stays pinned from before the first
segment until the last reply. Renditions are checked as each reply arrives (ffprobe runs
between segments, never inside a measured push) and then let go: memory holds one reply.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from functools import partial

import httpx

from ..config import GatewayConfig
from ..domain.outcome import TransportFault
from ..domain.plan import PlannedJob, TranscodeSpec
from ..domain.results import JobResult
from ..domain.transcode import Prober, SegmentResult, judge_segment, manifest_id
from ..domain.transcode_verdict import TranscodeRun, transcode_result
from ..network.probe import ffprobe, probe_bytes
from ..network.transcode import push_segment, stream_push


def measure_transcoding(
    job: PlannedJob,
    *,
    client: httpx.Client,
    gateway: GatewayConfig,
    webhook_requests: Callable[[], int],
    capture_limit: int,
    check_alive: Callable[[], None],
) -> JobResult:
    """Push the job's segments once each, in order, and judge the stream.

    ``check_alive`` raises ``GatewayUnreachable`` when a dropped connection was the
    gateway's going away, not the orchestrator's failure.
    """
    spec = job.pipeline
    assert isinstance(spec, TranscodeSpec)
    manifest = manifest_id(secrets.token_hex(8))
    # Each rendition is at most the capture limit; the whole reply holds one per profile, plus framing.
    push = stream_push(gateway, spec, manifest, capture_limit=capture_limit * (len(spec.profiles) + 1))
    executable = ffprobe()
    prober: Prober | None = partial(probe_bytes, executable=executable) if executable else None
    started_at = int(time.time())
    before = webhook_requests()
    results: list[SegmentResult] = []
    for seq in range(spec.segments):
        reply = push_segment(client, push, spec, seq)
        if reply.fault in (TransportFault.DROPPED, TransportFault.MALFORMED):
            check_alive()
        result = judge_segment(reply, spec.profiles, spec.segment.duration, prober, part_limit=capture_limit)
        results.append(result)
        if result.refused is not None:
            break  # the gateway will not take this stream: nothing more to learn, nobody to blame
    run = TranscodeRun(manifest, tuple(results), webhook_requests() - before, started_at)
    return transcode_result(job, spec, run)
