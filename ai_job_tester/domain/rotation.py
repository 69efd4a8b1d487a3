"""Rotation: the least recently tested jobs run first, so budget-limited cycles cover everything in turn. Pure.

``storage.rotation`` keeps when each (orchestrator, pipeline, model) was last tested.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .plan import PlannedJob


def rotation_key(job: PlannedJob) -> str:
    variant = f"|{job.variant.id}" if job.variant is not None else ""
    return f"{job.orchestrator.address}|{job.capability}|{job.model}{variant}"


def rotation_order(jobs: Sequence[PlannedJob], last_tested: Mapping[str, float]) -> list[int]:
    """Return plan indices, never-tested first, then oldest first; the plan's order breaks ties."""
    return sorted(range(len(jobs)), key=lambda index: (last_tested.get(rotation_key(jobs[index]), 0.0), index))
