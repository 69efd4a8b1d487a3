"""Live video jobs, one at a time after the batch jobs; a busy orchestrator is tried again in a later pass."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from ..config import LiveVideoConfig
from ..domain.live_verdict import LiveRun, busy_result, live_result
from ..domain.plan import PlannedJob
from ..errors import GatewayUnreachable
from ..network.gateway import GatewayCli, accepts_connections
from ..network.livestream import run_live_job
from .interrupts import Interrupted
from .observer import Observer
from .record import Recorder

Pending = list[tuple[int, PlannedJob, LiveRun | None]]


@dataclass(frozen=True, slots=True)
class LiveLane:
    """What the live passes run through: the lane's gateway, and where results go."""

    settings: LiveVideoConfig
    job_endpoint: str
    cli: GatewayCli
    client: httpx.Client
    recorder: Recorder
    observer: Observer
    budget_spent: Callable[[], bool]


def run_live(jobs: Sequence[tuple[int, PlannedJob]], lane: LiveLane) -> None:
    """Run every live job; those still busy after ``busy_passes`` are reported busy, never scored.

    Raises ``GatewayUnreachable`` when the gateway is gone: the jobs left are not run, nobody is blamed.
    """
    pending: Pending = [(i, job, None) for i, job in jobs]
    try:
        for attempt in range(lane.settings.busy_passes):
            if attempt:
                time.sleep(lane.settings.busy_backoff_seconds)
            pending = _one_pass(pending, lane)
            if not pending:
                break
    except Interrupted as exc:
        lane.recorder.interrupted = exc  # the ffmpeg children are already stopped
        return
    now = int(time.time())
    with lane.recorder.lock:
        for index, job, last in pending:  # full to the end: reported, never scored
            if index not in lane.recorder.results:
                lane.recorder.results[index] = busy_result(job, last, now)


def _one_pass(pending: Pending, lane: LiveLane) -> Pending:
    busy: Pending = []
    capacity = lane.cli.live_capacity()
    for index, job, last in pending:
        if lane.budget_spent():
            return []  # the budget is spent: what is left is deferred
        if capacity.get((job.orchestrator.address, job.model)) == 0:
            busy.append((index, job, last))  # no idle slot right now: do not even push
            continue
        lane.observer.job_started(index, job)
        run = run_live_job(job, lane.settings, lane.job_endpoint, lane.client)
        if run.error is not None and not accepts_connections(lane.job_endpoint):
            # The stream failed because the gateway went away: no orchestrator's fault.
            raise GatewayUnreachable(f"the gateway at {lane.job_endpoint} went away during a live job")
        if run.busy:
            busy.append((index, job, run))
            continue
        with lane.recorder.lock:
            lane.recorder.record(index, job, live_result(job, run))
        lane.observer.job_finished(index, lane.recorder.results[index])
    return busy
