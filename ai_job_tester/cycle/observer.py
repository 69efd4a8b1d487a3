"""What a cycle tells about its progress as it happens (from the lanes' threads)."""

from __future__ import annotations

from typing import Protocol

from ..domain.plan import Plan, PlannedJob
from ..domain.results import JobResult


class Observer(Protocol):
    """Told about progress as it happens; the CLI shows it, tests may record it."""

    def planned(self, plan: Plan) -> None: ...
    def job_started(self, index: int, job: PlannedJob) -> None: ...
    def job_finished(self, index: int, result: JobResult) -> None: ...


class SilentObserver:
    def planned(self, plan: Plan) -> None:
        pass

    def job_started(self, index: int, job: PlannedJob) -> None:
        pass

    def job_finished(self, index: int, result: JobResult) -> None:
        pass
