"""Running the lanes: a thread per gateway, each testing one job at a time from the shared scheduler."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

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
    try:
        _lane_jobs(lane, scheduler, everyone, recorder, observer)
    except Exception as exc:  # a thread's exception would only print a traceback: stop the lane instead
        if recorder.interrupted is None:  # after a signal the cycle closed this lane's sockets under it
            lane.failed = f"stopped by an unexpected error: {type(exc).__name__}: {exc}"
            log.error("lane %d stops: %s", lane.number, lane.failed, exc_info=log.isEnabledFor(logging.DEBUG))


def _lane_jobs(
    lane: Lane, scheduler: Scheduler, everyone: Sequence[str], recorder: Recorder, observer: Observer
) -> None:
    while recorder.interrupted is None and (item := scheduler.take()) is not None:
        index, job = item
        lane.point_at(job)
        observer.job_started(index, job)
        try:
            result = lane.measure(job)
        except GatewayUnreachable as exc:
            log.error("lane %d stops: %s", lane.number, exc)
            lane.failed = str(exc)
            scheduler.give_back(index, job)  # it never reached an orchestrator: another lane takes it
            return
        except Exception as exc:
            if recorder.interrupted is None:
                # The traceback is for --verbose: operators get one line.
                log.error("lane %d stops on an unexpected error: %r", lane.number, exc,
                          exc_info=log.isEnabledFor(logging.DEBUG))  # fmt: skip
                lane.failed = f"stopped by an unexpected error: {type(exc).__name__}: {exc}"
                scheduler.give_back(index, job)  # no result can be trusted: another lane runs it
            return
        finally:
            lane.idle(everyone)
        with recorder.lock:
            if recorder.interrupted is not None:
                return  # abandoned: a signal arrived while this job ran
            recorder.record(index, job, result)
            if recorder.stopped is not None:
                scheduler.close()
        scheduler.done(job)
        observer.job_finished(index, recorder.results[index])
