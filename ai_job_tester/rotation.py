"""Rotation: the least recently tested jobs run first, so budget-limited cycles cover everything in turn.

The state directory's ``rotation.json`` maps each (orchestrator, pipeline, model) to when
it was last tested.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .plan import PlannedJob

ROTATION_FILE = "rotation.json"


def rotation_key(job: PlannedJob) -> str:
    variant = f"|{job.variant.id}" if job.variant is not None else ""
    return f"{job.orchestrator.address}|{job.capability}|{job.model}{variant}"


def rotation_order(jobs: Sequence[PlannedJob], last_tested: Mapping[str, float]) -> list[int]:
    """Return plan indices, never-tested first, then oldest first; the plan's order breaks ties. Pure."""
    return sorted(range(len(jobs)), key=lambda index: (last_tested.get(rotation_key(jobs[index]), 0.0), index))


def load(state_dir: Path) -> dict[str, float]:
    try:
        data = json.loads((state_dir / ROTATION_FILE).read_text())
    except (OSError, ValueError):
        return {}  # no memory yet, or a damaged file: everything counts as never tested
    return {str(key): float(value) for key, value in data.items()} if isinstance(data, dict) else {}


def save(state_dir: Path, last_tested: Mapping[str, float]) -> None:
    path = state_dir / ROTATION_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dict(sorted(last_tested.items())), indent=0))
    os.replace(tmp, path)
