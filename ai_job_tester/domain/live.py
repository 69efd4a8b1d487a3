"""Live video-to-video: the pure parts (livepeer-live-contract.md).

Names, URLs and hashes the contract fixes, reading ffmpeg's frame lines, turning frame
timings into the measurements, telling a busy orchestrator from a broken one, and the
earlier tester's 0-1 score (kept for the payload, never posted as a latency).
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode

BUSY_MARKERS = ("OrchestratorCapped", "OrchestratorBusy", "insufficient capacity")
NOT_PINNED = "no orchestrators available"
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_PTS = re.compile(r"pts_time:\s*(-?[0-9.]+)")


@dataclass(frozen=True, slots=True)
class LiveStats:
    """What one live stream showed, every time counted from the moment the push started."""

    stream_id: str
    params_hash: str
    frames: int
    time_to_first_frame: float | None
    fps: float | None
    mean_frame_latency: float | None
    gateway_ready: float | None
    confirmed: bool | None  # the runner reported our params' hash; None when it said nothing
    score: float

    def payload(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id,
            "params_hash": self.params_hash,
            "prompt_confirmed": self.confirmed,
            "frames": self.frames,
            "time_to_first_frame": self.time_to_first_frame,
            "fps": self.fps,
            "mean_frame_latency": self.mean_frame_latency,
            "gateway_ready_seconds": self.gateway_ready,
            "score": self.score,
        }


def slug(text: str) -> str:
    return _NOT_SLUG.sub("-", text.lower()).strip("-")


def params_hash(params: Mapping[str, Any]) -> str:
    """The runner's hash: MD5 of ``json.dumps(params, sort_keys=True)`` with the default separators."""
    return hashlib.md5(json.dumps(params, sort_keys=True).encode(), usedforsecurity=False).hexdigest()


def stream_id(*, complexity: str, prompt_id: str, params: Mapping[str, Any], now_ns: int) -> str:
    return f"aiJobTesterStream-{slug(complexity)}-{slug(prompt_id)[:24]}-{params_hash(params)[:8]}-{now_ns}"


def ingest_url(base: str, stream: str, *, orchestrator: str, params: Mapping[str, Any], selector: str) -> str:
    """``<base>/<streamId>?…`` with the keys sorted and form-encoded, pinned to one orchestrator."""
    query = {
        "orchestrator": orchestrator,
        "params": json.dumps(params, separators=(",", ":")),
        "pipeline": selector,
        "streamId": stream,
    }
    return f"{base.rstrip('/')}/{stream}?{urlencode(sorted(query.items()), quote_via=quote_plus)}"


def frame_pts(line: str) -> float | None:
    """Return the ``pts_time`` of one of ffmpeg's ``showinfo`` lines, or None for any other line."""
    if "showinfo" not in line and "pts_time" not in line:
        return None
    match = _PTS.search(line)
    return float(match.group(1)) if match else None


def status_error(status: Mapping[str, Any]) -> str | None:
    """Return the error a status reports (gateway's first, then the runner's), or None."""
    gateway = status.get("gateway_status") or {}
    error = gateway.get("error") if isinstance(gateway, Mapping) else None
    if isinstance(error, Mapping) and error.get("error_message"):
        return str(error["error_message"])
    inference = status.get("inference_status") or {}
    if isinstance(inference, Mapping) and inference.get("last_error"):
        return str(inference["last_error"])
    if status.get("state") == "ERROR":
        return "the stream is in state ERROR"
    return None


def is_busy(error: str | None) -> bool:
    """A full orchestrator is busy, not broken: it is retried, and never scored zero for it."""
    return error is not None and any(marker.lower() in error.lower() for marker in BUSY_MARKERS)


def frame_measurements(frames: Sequence[tuple[float, float]]) -> tuple[float | None, float | None, float | None]:
    """From (arrival, pts) pairs: time to first frame, fps, and mean latency (arrival − pts)."""
    if not frames:
        return None, None, None
    span = frames[-1][1] - frames[0][1]
    fps = len(frames) / span if span > 0 else None
    return frames[0][0], fps, statistics.fmean(arrival - pts for arrival, pts in frames)


def live_score(
    *, fps: float | None, target_fps: float, first_frame: float | None, ready: float | None, max_initial: float
) -> float:
    """The earlier tester's score: 0.7 for frame rate, 0.3 for start-up, clamped to [0, 1]."""
    if fps is None or first_frame is None:
        return 0.0
    rate = max(0.0, 1 - (1 - min(fps / target_fps, 1.0)) ** 2)
    effective = max(0.0, first_frame - (ready or 0.0))
    start = max(0.0, 1 - effective / max_initial)
    return min(1.0, max(0.0, 0.7 * rate + 0.3 * start))
