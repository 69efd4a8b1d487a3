"""The state directory's ``rotation.json``: when each (orchestrator, pipeline, model) was last tested."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path

ROTATION_FILE = "rotation.json"

log = logging.getLogger("ai_job_tester")


def load(state_dir: Path) -> dict[str, float]:
    """When each job was last tested; a damaged file is set aside and everything counts as never tested."""
    path = state_dir / ROTATION_FILE
    try:
        data = json.loads(path.read_bytes())
        return {str(key): _seconds(value) for key, value in data.items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        aside = path.with_name(path.name + ".broken")
        with contextlib.suppress(OSError):  # if it cannot even be moved, saving at the end says so
            os.replace(path, aside)
        log.warning("%s was unreadable (%s); set aside as %s, and every job counts as never tested",
                    path, type(exc).__name__, aside.name)  # fmt: skip
        return {}


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a time: {value!r}")
    return float(value)


def save(state_dir: Path, last_tested: Mapping[str, float]) -> None:
    """Write the file atomically; a failure is a warning, for the next cycle only loses its order."""
    path = state_dir / ROTATION_FILE
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(dict(sorted(last_tested.items())), indent=0))
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not write %s (%s); the next cycle runs jobs in plan order", path, exc.strerror)
