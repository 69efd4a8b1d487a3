"""The health gate: when every job fails, the tester is a likelier culprit than the network. Pure.

A gateway whose deposit ran out, whose ticket parameters expired, or that lost its
connectivity fails every job of a cycle; posting those rows would give every
orchestrator in the region a zero. So failure rows wait (held) until a job of the cycle
passes. If none passes and at least ``min_orchestrators`` distinct orchestrators failed,
the rows stay held; with fewer there is not enough evidence against the tester, and they
are posted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from .fingerprints import REPLAYED_OUTPUT
from .outcome import Outcome
from .results import JobResult

HELD_MESSAGE = "held: no job of this cycle has passed yet"
REFUSED_MESSAGE = "held: every orchestrator tested for this pipeline and model refused the request the same way"
REPLAY_MESSAGE = "held: a replayed output waits for the end of the cycle, to see how many orchestrators share it"

REPLAY_SPREAD = 3
"""Distinct orchestrators of a cycle with one identical output, from which it is the gateway's, not theirs.

One orchestrator answering from its cache repeats its own output; the same bytes from three
or more orchestrators points at what they share: the gateway or its object store serving one
object for every job.
"""


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


def is_client_error(error_code: str | None) -> bool:
    """A 4xx status after routing: the runner refused our request's parameters."""
    return error_code is not None and len(error_code) == 3 and error_code.startswith("4") and error_code.isdigit()


def refused_requests(results: Sequence[JobResult]) -> list[tuple[str, str, str]]:
    """(pipeline, model, status) where every orchestrator tested failed with the same 4xx: our request's fault.

    One wrong parameter in a pipeline's config would otherwise zero that pipeline for everyone.
    """
    groups: dict[tuple[str, str], list[JobResult]] = defaultdict(list)
    for result in results:
        if result.scored:
            groups[(result.job.capability, result.job.model)].append(result)
    refused = []
    for (pipeline, model), group in groups.items():
        codes = {r.verdict.error_code for r in group}
        code = next(iter(codes))
        if len(codes) == 1 and all(r.outcome is Outcome.FAILED for r in group) and is_client_error(code):
            refused.append((pipeline, model, str(code)))
    return refused


def shared_outputs(results: Sequence[JobResult], spread: int = REPLAY_SPREAD) -> dict[str, int]:
    """Fingerprints of replayed outputs that ``spread`` or more orchestrators of the cycle returned, with how many.

    Those replays are held, not posted: blaming each orchestrator for the gateway's one object
    would zero them all.
    """
    replayed = {r.fingerprint for r in results if r.verdict.error_code == REPLAYED_OUTPUT and r.fingerprint}
    owners: dict[str, set[str]] = defaultdict(set)
    for result in results:
        if result.fingerprint in replayed:
            owners[result.fingerprint].add(result.job.orchestrator.address)
    return {digest: len(who) for digest, who in owners.items() if len(who) >= spread}
