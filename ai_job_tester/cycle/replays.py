"""The cycle's replay check: one fingerprint index shared by every lane, remembered across cycles.

Lanes call ``check`` from their own threads; a lock makes "is it known? remember it" one
step, so of two lanes that bring back the same output at once exactly one is the earlier.
"""

from __future__ import annotations

import threading
import time

from ..domain.fingerprints import (
    REPLAYED_OUTPUT,
    FingerprintIndex,
    Kind,
    Sighting,
    Tally,
    replay_message,
    request_digest,
)
from ..domain.outcome import Outcome, Verdict
from ..domain.plan import PlannedJob
from ..storage.fingerprints import KEEP_SECONDS, MAX_SIGHTINGS, Memory


class ReplayGuard:
    """Compares each output with every one seen this cycle and in the recent cycles kept."""

    def __init__(self, memory: Memory) -> None:
        self._index = FingerprintIndex(memory.sightings)
        self._lock = threading.Lock()
        self._tally = memory.tally

    def check(
        self, job: PlannedJob, *, kind: Kind, digest: str, started_at: int, input_parameters: str
    ) -> Verdict | None:
        """Remember this job's output; return REPLAYED_OUTPUT when an earlier job had it for another request."""
        sighting = Sighting(
            kind=kind,
            digest=digest,
            orchestrator=job.orchestrator.address,
            pipeline=job.capability,
            model=job.model,
            at=started_at,
            request=request_digest(job.route, input_parameters),
        )
        with self._lock:
            earlier = self._index.sight(sighting)
            self._tally = self._tally.plus(checked=1, replayed=int(earlier is not None))
        if earlier is None:
            return None
        return Verdict(Outcome.FAILED, REPLAYED_OUTPUT, replay_message(kind, earlier))

    @property
    def tally(self) -> Tally:
        with self._lock:
            return self._tally

    def memory(self, now: int | None = None) -> Memory:
        """What to keep for the next cycles: the recent fingerprints and the lifetime tally."""
        now = int(time.time()) if now is None else now
        with self._lock:
            kept = self._index.recent(now=now, keep_seconds=KEEP_SECONDS, limit=MAX_SIGHTINGS)
            return Memory(tuple(kept), self._tally)
