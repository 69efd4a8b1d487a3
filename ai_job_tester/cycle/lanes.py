"""Running the lanes: a thread per gateway, each testing one job at a time from the shared scheduler.

Whatever fails in a lane (its gateway, storing a row, the display), the lane gives back
the orchestrator it holds before it stops, so no other lane waits for it for ever.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ..domain.plan import PlannedJob
from ..domain.text import printable
from ..errors import GatewayUnreachable
from .interrupts import Interrupted
from .lane import Lane
from .observer import Observer
from .record import Recorder
from .schedule import Scheduler

log = logging.getLogger("ai_job_tester")


def run_lanes(
    lanes: Sequence[Lane], scheduler: Scheduler, everyone: Sequence[str], recorder: Recorder, observer: Observer
) -> None:
    """Run every lane until the scheduler is empty; the calling (main) thread only waits, so signals reach it."""
    threads = [
        threading.Thread(
            target=_lane_loop,
            args=(lane, scheduler, everyone, recorder, observer),
            name=f"lane-{lane.number}",
            daemon=True,
        )
        for lane in lanes
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.05)  # short waits: a signal must reach this thread promptly
    except Interrupted as exc:
        # No new job starts; jobs under way are abandoned: their lanes record nothing more.
        recorder.interrupted = exc
        scheduler.close()
    if all(lane.failed for lane in lanes) and recorder.stopped is None:
        recorder.stopped = lanes[0].failed if len(lanes) == 1 else "every lane's gateway failed"


def _lane_loop(
    lane: Lane, scheduler: Scheduler, everyone: Sequence[str], recorder: Recorder, observer: Observer
) -> None:
    while recorder.interrupted is None and lane.failed is None and (item := scheduler.take()) is not None:
        index, job = item
        recorded = False
        try:
            recorded = _one_job(lane, scheduler, index, job, everyone, recorder, observer)
        except Exception as exc:  # the lane stops with one line; the traceback is for --verbose
            if recorder.interrupted is None:  # after a signal the cycle closed this lane's sockets under it
                lane.failed = printable(f"stopped by an unexpected error: {type(exc).__name__}: {exc}", 500)
                log.error("lane %d %s", lane.number, lane.failed, exc_info=log.isEnabledFor(logging.DEBUG))
        finally:
            if recorded:
                scheduler.done(job)
            else:  # it never got a result: another lane runs it (or, after a signal, nobody)
                scheduler.give_back(index, job)


def _one_job(
    lane: Lane,
    scheduler: Scheduler,
    index: int,
    job: PlannedJob,
    everyone: Sequence[str],
    recorder: Recorder,
    observer: Observer,
) -> bool:
    """Measure and record one job; tell whether its result was recorded."""
    lane.point_at(job)
    try:
        _tell(observer.job_started, index, job)
        result = lane.measure(job)
    except GatewayUnreachable as exc:
        log.error("lane %d stops: %s", lane.number, exc)
        lane.failed = str(exc)
        return False
    finally:
        lane.idle(everyone)
    # The previous row was synced behind this job (its fdatasync, about 1 ms, no longer holds
    # the lane between two jobs); it is on disk before this one is recorded, and before its post.
    recorder.settle()
    with recorder.lock:
        if recorder.interrupted is not None:
            return False  # abandoned: a signal arrived while this job ran
        recorder.record(index, job, result)
        if recorder.stopped is not None:
            scheduler.close()
        result = recorder.results[index]
    _tell(observer.job_finished, index, result)
    return True


def _tell(callback: Callable[[int, Any], None], index: int, subject: object) -> None:
    """Progress is for people: a display that fails is logged, never allowed to stop a measurement."""
    try:
        callback(index, subject)
    except Exception as exc:
        log.warning("the progress display failed (%s); the cycle goes on", printable(f"{type(exc).__name__}: {exc}"))
