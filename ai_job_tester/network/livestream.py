"""Running one live video test with ffmpeg: push, wait for the gateway, read and time the output.

Every ffmpeg child is started in its own session and is gone when ``run_live_job``
returns or raises, on success, failure, timeout or signal: no stream is left publishing.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx

from ..config import LiveVideoConfig
from ..domain import live
from ..domain.live_verdict import LiveRun, live_params
from ..domain.plan import PlannedJob
from ..domain.text import loads_object
from .deadline import DeadlineExceeded, within

POLL_SECONDS = 0.25
STATUS_TIMEOUT_SECONDS = 5.0  # one status request, whole
_READ_COMMAND = ["ffmpeg", "-nostdin", "-nostats", "-fflags", "nobuffer", "-analyzeduration", "1M", "-probesize",
                 "64k", "-i", "URL"]  # fmt: skip
_READ_TAIL = ["-map", "0:v:0", "-vf", "showinfo", "-an", "-f", "null", "-"]
_STOP_GRACE_SECONDS = 2.0


def run_live_job(job: PlannedJob, settings: LiveVideoConfig, gateway: str, client: httpx.Client) -> LiveRun:
    """Push a stream pinned to the job's orchestrator, measure its output, and stop everything."""
    params = live_params(job)
    variant = job.variant
    stream = live.stream_id(
        complexity=variant.complexity if variant else "default",
        prompt_id=variant.id if variant else "default",
        params=params,
        now_ns=time.time_ns(),
    )
    url = live.ingest_url(
        settings.media_server_url, stream, orchestrator=job.orchestrator.service_uri, params=params, selector=job.model
    )
    started = time.monotonic()
    with _process(_push_command(settings, url)):
        ready, error = _wait_until_ready(client, gateway, stream, started, settings.status_timeout_seconds)
        frames: list[tuple[float, float]] = []
        if error is None:
            frames = _read_output(f"{settings.playback_base}/{stream}-out", started, settings)
            if not frames:
                error = f"no output frames within {settings.output_timeout_seconds:g} s"
    final = _status(client, gateway, stream) or {}
    error = error or live.status_error(final)
    first, fps, latency = live.frame_measurements(frames)
    reported = (final.get("inference_status") or {}).get("last_params_hash")
    digest = live.params_hash(params)
    stats = live.LiveStats(
        stream_id=stream,
        params_hash=digest,
        frames=len(frames),
        time_to_first_frame=first,
        fps=fps,
        mean_frame_latency=latency,
        gateway_ready=ready,
        confirmed=None if not reported else reported == digest,
        score=live.live_score(
            fps=fps,
            target_fps=settings.target_fps,
            first_frame=first,
            ready=ready,
            max_initial=settings.max_initial_latency_seconds,
        ),
    )
    elapsed = time.monotonic() - started
    return LiveRun(stats, error, live.is_busy(error), elapsed, params, started_at=int(time.time() - elapsed))


def _push_command(settings: LiveVideoConfig, url: str) -> list[str]:
    if settings.source:
        source = ["-re", "-stream_loop", "-1", "-i", settings.source]
    else:
        source = ["-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30"]
    encode = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-an", "-r", "30", "-g", "60"]
    return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", *source, *encode, "-f", "flv", url]


def _wait_until_ready(
    client: httpx.Client, gateway: str, stream: str, started: float, timeout: float
) -> tuple[float | None, str | None]:
    """Poll the status until it answers with no error (ready), reports an error, or time runs out."""
    while time.monotonic() - started < timeout:
        status = _status(client, gateway, stream)
        if status is not None:
            error = live.status_error(status)
            if error is not None:
                return None, error
            return time.monotonic() - started, None
        time.sleep(POLL_SECONDS)
    return None, f"the gateway reported no status for the stream within {timeout:g} s"


def _status(client: httpx.Client, gateway: str, stream: str) -> dict[str, Any] | None:
    url = f"{gateway}/live/video-to-video/{stream}/status"
    try:
        reply = within(STATUS_TIMEOUT_SECONDS, lambda: client.get(url, timeout=STATUS_TIMEOUT_SECONDS),
                       what="the stream's status")  # fmt: skip
    except (httpx.HTTPError, DeadlineExceeded):
        return None
    if reply.status_code != 200:
        return None
    return loads_object(reply.content)


def _read_output(url: str, started: float, settings: LiveVideoConfig) -> list[tuple[float, float]]:
    """Read the output with ffmpeg until the test's duration has passed; retry until the output deadline."""
    frames: list[tuple[float, float]] = []
    deadline = started + settings.output_timeout_seconds
    while not frames and time.monotonic() < deadline:
        command = [*_READ_COMMAND[:-1], url, *_READ_TAIL]
        _read_once(command, started, frames, deadline=deadline, duration=settings.test_duration_seconds)
        if not frames:
            time.sleep(POLL_SECONDS)  # the output may appear seconds after the push: read again
    return list(frames)


def _read_once(
    command: Sequence[str], started: float, frames: list[tuple[float, float]], *, deadline: float, duration: float
) -> None:
    with _process(command, stderr=subprocess.PIPE) as reader:
        collector = threading.Thread(target=_collect, args=(reader, started, frames), daemon=True)
        collector.start()
        try:
            while reader.poll() is None and time.monotonic() < deadline:
                if frames and time.monotonic() - started - frames[0][0] >= duration:
                    break
                time.sleep(0.05)
        finally:  # also when a signal ends the job: the pipe is closed, never left to the collector of garbage
            _stop(reader)  # so that the collector reaches the end of ffmpeg's stderr
            collector.join(timeout=_STOP_GRACE_SECONDS)
            if reader.stderr is not None and not collector.is_alive():
                reader.stderr.close()


def _collect(reader: subprocess.Popen[str], started: float, frames: list[tuple[float, float]]) -> None:
    assert reader.stderr is not None
    for line in reader.stderr:
        pts = live.frame_pts(line)
        if pts is not None:
            frames.append((time.monotonic() - started, pts))


@contextmanager
def _process(command: Sequence[str], **options: Any) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        list(command), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=options.pop("stderr", subprocess.DEVNULL), text=True, start_new_session=True, **options,
    )  # fmt: skip
    try:
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=_STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
