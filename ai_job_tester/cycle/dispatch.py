"""Where each postable result goes: posted, or held by the health gate until the evidence clears it.

See ``domain/gate.py`` for why. Two holds:

- until a job of this cycle passes, every failure is held (a broken tester fails everyone);
- a failure with a 4xx after routing is held per pipeline and model until another
  orchestrator of that pipeline and model passes or fails differently (one wrong
  parameter in our request would otherwise zero the pipeline for everyone);
- a replayed output is held to the end of the cycle: posted if few orchestrators share
  it, held if many do (the gateway's one object, not each orchestrator's cache).

Results are updated with what happened to their row (``on_delivery``), so the summary and
the report say "held" for a held row and "posted" once it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..domain.delivery import Delivery
from ..domain.fingerprints import REPLAYED_OUTPUT
from ..domain.gate import (
    HELD_MESSAGE,
    REFUSED_MESSAGE,
    REPLAY_MESSAGE,
    is_client_error,
    refused_requests,
    shared_outputs,
    tester_fault,
)
from ..domain.outcome import Outcome
from ..domain.results import JobResult, build_row
from ..domain.rows import Row
from ..storage.outbox import Outbox, Parcel
from .courier import Courier

log = logging.getLogger("ai_job_tester")

_QUEUED = Delivery(False, None, "stored, waiting to be posted", queued=True)

Key = tuple[str, str]  # (pipeline, model)


class Dispatch:
    """Hands rows to the courier, holding failures the tester cannot yet stand behind."""

    def __init__(self, courier: Courier | None, held: Outbox, *, region: str, gate_orchestrators: int) -> None:
        self._courier = courier
        self._held = held
        self._region = region
        self._gate_orchestrators = gate_orchestrators
        self._gate_open = gate_orchestrators == 0
        self._held_now: list[tuple[int, Parcel]] = []  # (index in results, parcel) held until a pass
        self._refused: dict[Key, tuple[str, list[tuple[int, Parcel]]]] = {}  # 4xx code and rows held
        self._cleared: set[Key] = set()  # pipelines and models whose 4xx failures are the orchestrators'
        self._replays: list[tuple[int, Parcel]] = []  # replayed outputs, decided at the end of the cycle
        self.on_delivery: Callable[[int, Delivery], None] = lambda index, delivery: None

    def take(self, results: dict[int, JobResult], index: int) -> None:
        """Deal with a new result: hold it, post it, and release what it vouches for."""
        result = results[index]
        if self._courier is None or not result.scored:
            return
        row = build_row(result, self._region)
        if result.verdict.error_code == REPLAYED_OUTPUT:
            self._replays.append((index, self._held.put(row)))
            results[index] = result.delivered(Delivery(False, None, REPLAY_MESSAGE, held=True))
            return
        key = (result.job.capability, result.job.model)
        code = result.verdict.error_code
        refused = self._refused.get(key)
        suspect = result.outcome is Outcome.FAILED and is_client_error(code) and key not in self._cleared
        if suspect and (refused is None or refused[0] == code):
            self._hold_refused(results, index, key, str(code), row)
            return
        if refused is not None:  # another orchestrator did otherwise: the 4xx were theirs after all
            self._clear(results, key)
        self._cleared.add(key)
        if not self._gate_open and result.outcome is Outcome.FAILED:
            self._held_now.append((index, self._held.put(row)))
            results[index] = result.delivered(Delivery(False, None, HELD_MESSAGE, held=True))
            return
        self._send(results, index, row)
        if not self._gate_open:
            self._gate_open = True  # a pass: the tester works, and the failures held so far were real
            self._release(results)

    def settle(self) -> None:
        """Return once every row handed to the courier is on disk."""
        if self._courier is not None:
            self._courier.settle()

    def finish(self, results: dict[int, JobResult], *, conclusive: bool) -> str | None:
        """Decide on rows still held at the end; return why rows stay held (or would), or None.

        ``conclusive`` is False when the cycle stopped or was interrupted: then nothing
        held is released, for the evidence is incomplete.
        """
        everything = list(results.values())
        verdict = tester_fault(everything, self._gate_orchestrators)
        reasons = [
            f"every orchestrator tested for {pipeline} / {model} failed with HTTP {code} after routing: the "
            "request is likely at fault (check this pipeline's parameters); their rows are held, not posted"
            for pipeline, model, code in refused_requests(everything)
        ]
        if self._courier is not None and not self._gate_open and self._held_now:
            if verdict is None and conclusive:
                log.info("releasing %d held rows: too few orchestrators failed to blame the tester",
                         len(self._held_now))  # fmt: skip
                self._gate_open = True
                self._release(results)
            elif verdict is None:
                verdict = "the cycle ended before any job passed; failure rows stay held (see `ai-job-tester outbox`)"
        reasons += self._decide_replays(results, conclusive=conclusive)
        message = "; ".join(([verdict] if verdict else []) + reasons) or None
        if message:
            log.error("%s", message)
        return message

    def _decide_replays(self, results: dict[int, JobResult], *, conclusive: bool) -> list[str]:
        """Post the replays few orchestrators share; keep those many share (and all, when the cycle stopped)."""
        if self._courier is None or not self._replays:
            return []
        shared = shared_outputs(list(results.values()))
        kept = []
        for index, parcel in self._replays:
            if conclusive and results[index].fingerprint not in shared:
                self._send(results, index, parcel.row)
                self._held.delivered(parcel)
            else:
                kept.append((index, parcel))
        self._replays = kept
        if not kept:
            return []
        if not conclusive:
            return [f"the cycle ended early: {len(kept)} replayed-output rows stay held (see `ai-job-tester outbox`)"]
        return [
            f"{count} orchestrators returned the very same output: the gateway or its object store more likely "
            f"served one object to every job than each of them replayed it; their {len(kept)} REPLAYED_OUTPUT rows "
            "are held, not posted"
            for count in sorted(set(shared.values()))
        ]

    def _send(self, results: dict[int, JobResult], index: int, row: Row) -> None:
        assert self._courier is not None
        results[index] = results[index].delivered(_QUEUED)
        self._courier.send(row, lambda delivery: self.on_delivery(index, delivery))

    def _hold_refused(
        self, results: dict[int, JobResult], index: int, key: Key, code: str, row: Row
    ) -> None:
        parcel = self._held.put(row)
        self._refused.setdefault(key, (code, []))[1].append((index, parcel))
        results[index] = results[index].delivered(Delivery(False, None, REFUSED_MESSAGE, held=True))

    def _clear(self, results: dict[int, JobResult], key: Key) -> None:
        _, rows = self._refused.pop(key)
        for index, parcel in rows:
            if self._gate_open:
                self._send(results, index, parcel.row)
                self.settle()  # in the outbox for good before the held copy is let go
                self._held.delivered(parcel)
            else:  # still no pass anywhere: they stay held with the other failures
                self._held_now.append((index, parcel))
                results[index] = results[index].delivered(Delivery(False, None, HELD_MESSAGE, held=True))

    def _release(self, results: dict[int, JobResult]) -> None:
        for index, parcel in self._held_now:
            self._send(results, index, parcel.row)
            self.settle()  # in the outbox for good before the held copy is let go
            self._held.delivered(parcel)
        self._held_now.clear()
