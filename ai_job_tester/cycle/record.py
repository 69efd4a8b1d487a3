"""The cycle's results as they come in from the lanes, and the decision to stop when none can be attributed."""

from __future__ import annotations

import signal
import threading
import time

from ..domain.delivery import Delivery
from ..domain.outcome import TESTER_MODE_HINT, Outcome, Verdict
from ..domain.plan import Plan, PlannedJob
from ..domain.results import JobResult, not_run
from ..domain.rotation import rotation_key
from .dispatch import Dispatch
from .interrupts import Interrupted

UNROUTED_STOP_AFTER = 3
"""A cycle whose first this-many jobs were all unrouted stops: the gateway is not in tester mode."""

DEFERRED = "not started: the time budget was spent; rotation runs it first next cycle"


class Recorder:
    """Keeps each job's result, stamps rotation, hands postable rows to the dispatch.

    Lanes call ``record`` under ``lock``; ``stopped`` and ``interrupted`` say why the
    cycle ended early, if it did.
    """

    def __init__(self, dispatch: Dispatch, last_tested: dict[str, float]) -> None:
        # Reentrant: the courier may answer a row at once (posting stopped) inside ``record``.
        self.lock = threading.RLock()
        self.dispatch = dispatch
        dispatch.on_delivery = self._delivered
        self.last_tested = last_tested
        self.results: dict[int, JobResult] = {}
        self._finished: list[int] = []
        self.stopped: str | None = None
        self.interrupted: Interrupted | None = None

    @property
    def going(self) -> bool:
        return self.stopped is None and self.interrupted is None

    def record(self, index: int, job: PlannedJob, result: JobResult) -> None:
        """Keep a finished job's result (call under ``lock``); may set ``stopped``."""
        self.results[index] = result
        self._finished.append(index)
        self.last_tested[rotation_key(job)] = time.time()
        self.dispatch.take(self.results, index)
        first = [self.results[i] for i in self._finished[:UNROUTED_STOP_AFTER]]
        unrouted = len(first) == UNROUTED_STOP_AFTER and all(r.outcome is Outcome.UNROUTED for r in first)
        if unrouted and self.stopped is None:
            self.stopped = (
                f"the first {UNROUTED_STOP_AFTER} jobs ran without the gateway asking the webhook, so no "
                f"result can be attributed: {TESTER_MODE_HINT}"
            )

    def settle(self) -> None:
        """Return once every row recorded so far is on disk: a lane calls it (without ``lock``) before its next job."""
        self.dispatch.settle()

    def _delivered(self, index: int, delivery: Delivery) -> None:
        with self.lock:
            self.results[index] = self.results[index].delivered(delivery)

    def complete(self, plan: Plan, *, budget_spent: bool) -> list[JobResult]:
        """Every planned job's result in plan order; jobs that never ran say why."""
        now = int(time.time())
        if self.interrupted is not None:
            why = f"abandoned: {signal.Signals(self.interrupted.signum).name} received"
        elif self.stopped is not None:
            why = f"the cycle stopped: {self.stopped}"
        else:
            why = "not run: the gateway of its lane failed"
        deferred = budget_spent and self.going
        results = []
        for index, job in enumerate(plan.jobs):
            result = self.results.get(index)
            if result is None and deferred:
                result = JobResult(job=job, verdict=Verdict(Outcome.DEFERRED, None, DEFERRED), started_at=now)
            if result is not None and result.delivery is not None and result.delivery.queued:
                # Stored, never answered (the run was interrupted): the next run sends it first.
                result = result.delivered(Delivery(False, None, "kept in the outbox: the run ended before its post"))
            results.append(result or not_run(job, at=now, why=why))
        return results
