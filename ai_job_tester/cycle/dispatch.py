"""Where each postable result goes: posted, or held by the health gate until the cycle earns trust.

See ``gate.py`` for why. Results are updated in place with what happened to their row,
so the summary and the report say "held" for a held row and "posted" once it was.
"""

from __future__ import annotations

import logging

from ..domain.delivery import Delivery
from ..domain.gate import HELD_MESSAGE, tester_fault
from ..domain.outcome import Outcome
from ..domain.results import JobResult, build_row
from ..storage.outbox import Outbox, Parcel
from .courier import Courier

log = logging.getLogger("ai_job_tester")


class Dispatch:
    """Posts rows through the courier, holding failures until a job of this cycle passes."""

    def __init__(self, courier: Courier | None, held: Outbox, *, region: str, gate_orchestrators: int) -> None:
        self._courier = courier
        self._held = held
        self._region = region
        self._gate_orchestrators = gate_orchestrators
        self._gate_open = gate_orchestrators == 0
        self._held_now: list[tuple[int, Parcel]] = []  # (index in results, parcel) held this cycle

    def take(self, results: dict[int, JobResult], index: int) -> None:
        """Deal with a new result: hold it, post it, and release what it vouches for."""
        result = results[index]
        if self._courier is None or not result.scored:
            return
        row = build_row(result, self._region)
        if not self._gate_open and result.outcome is Outcome.FAILED:
            self._held_now.append((index, self._held.put(row)))
            results[index] = result.delivered(Delivery(False, None, HELD_MESSAGE, held=True))
            return
        results[index] = result.delivered(self._courier.send(row))
        if not self._gate_open:
            self._gate_open = True  # a pass: the tester works, and the failures held so far were real
            self._release(results)

    def finish(self, results: dict[int, JobResult], *, conclusive: bool) -> str | None:
        """Decide on rows still held at the end; return why they stay held, or None.

        ``conclusive`` is False when the cycle stopped or was interrupted: then nothing
        held is released, for the evidence is incomplete.
        """
        verdict = tester_fault(list(results.values()), self._gate_orchestrators)
        if self._courier is None or self._gate_open or not self._held_now:
            return verdict
        if verdict is None and conclusive:
            log.info("releasing %d held rows: too few orchestrators failed to blame the tester", len(self._held_now))
            self._release(results)
            return None
        if verdict is None:
            verdict = "the cycle ended before any job passed; failure rows stay held (see `ai-job-tester outbox`)"
        log.error("%s", verdict)
        return verdict

    def _release(self, results: dict[int, JobResult]) -> None:
        assert self._courier is not None
        for index, parcel in self._held_now:
            results[index] = results[index].delivered(self._courier.send(parcel.row))
            self._held.delivered(parcel)
        self._held_now.clear()
