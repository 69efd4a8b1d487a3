"""Handing jobs to lanes: in rotation order, one orchestrator to one lane at a time, none past the budget.

Thread-safe; it knows nothing of HTTP. A lane asks ``take`` for its next job and says
``done`` (or ``give_back``, when its gateway failed before the job reached anyone).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from ..domain.plan import PlannedJob

Item = tuple[int, PlannedJob]  # (index in the plan, job)


class Scheduler:
    """The cycle's queue of jobs, shared by the lanes."""

    def __init__(
        self, jobs: Sequence[Item], *, deadline: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._pending = list(jobs)
        self._busy: set[str] = set()
        self._deadline = deadline
        self._clock = clock
        self._closed = False
        self._cond = threading.Condition()

    def take(self) -> Item | None:
        """Return the next job whose orchestrator no other lane is testing; None when there is none to start."""
        with self._cond:
            while not self._closed and self._pending:
                if self._deadline is not None and self._clock() >= self._deadline:
                    return None  # the budget is spent
                for position, (index, job) in enumerate(self._pending):
                    if job.orchestrator.address not in self._busy:
                        del self._pending[position]
                        self._busy.add(job.orchestrator.address)
                        return index, job
                # Every orchestrator left is being tested by another lane: wait for one to be free.
                self._cond.wait(timeout=self._wait_seconds())
            return None

    def done(self, job: PlannedJob) -> None:
        with self._cond:
            self._busy.discard(job.orchestrator.address)
            self._cond.notify_all()

    def give_back(self, index: int, job: PlannedJob) -> None:
        """Return a job that never reached an orchestrator; another lane takes it first."""
        with self._cond:
            self._busy.discard(job.orchestrator.address)
            self._pending.insert(0, (index, job))
            self._cond.notify_all()

    def close(self) -> None:
        """Start no more jobs."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _wait_seconds(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - self._clock())
