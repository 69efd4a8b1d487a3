"""The state directory's ``rotation.json``: when each (orchestrator, pipeline, model) was last tested."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

ROTATION_FILE = "rotation.json"


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
