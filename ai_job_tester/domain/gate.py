"""The health gate: when every job fails, the tester is a likelier culprit than the network. Pure.

A gateway whose deposit ran out, whose ticket parameters expired, or that lost its
connectivity fails every job of a cycle; posting those rows would give every
orchestrator in the region a zero. So failure rows wait (held) until a job of the cycle
passes. If none passes and at least ``min_orchestrators`` distinct orchestrators failed,
the rows stay held; with fewer there is not enough evidence against the tester, and they
are posted.
"""

from __future__ import annotations

from collections.abc import Sequence

from .outcome import Outcome
from .results import JobResult

HELD_MESSAGE = "held: no job of this cycle has passed yet"


def tester_fault(results: Sequence[JobResult], min_orchestrators: int) -> str | None:
    """Return why the cycle's failures look like the tester's fault, or None when they do not."""
    if min_orchestrators <= 0 or any(r.outcome is Outcome.PASSED for r in results):
        return None
    failed = {r.job.orchestrator.address for r in results if r.outcome is Outcome.FAILED}
    if len(failed) < min_orchestrators:
        return None
    return (
        f"nothing passed and all {len(failed)} orchestrators tested failed: the tester or its gateway is the "
        "likely fault (gateway deposit or ticket parameters, gateway connectivity, tester-mode flags); "
        "their rows are held, not posted (see `ai-job-tester outbox`)"
    )
