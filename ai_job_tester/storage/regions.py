"""The state directory's ``regions.json``: regions the leaderboard has confirmed as AI regions, and when.

When the leaderboard's regions cannot be read, a region confirmed by an earlier run is
trusted; any other region's rows wait in the outbox rather than risk a silent drop.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

REGIONS_FILE = "regions.json"

log = logging.getLogger("ai_job_tester")


def confirmed_ai_region(state_dir: Path, region: str) -> bool:
    """Tell whether an earlier run saw ``region`` listed as an AI region."""
    return region in _load(state_dir)


def remember_ai_region(state_dir: Path, region: str) -> None:
    """Note that the leaderboard listed ``region`` as an AI region just now."""
    known = {**_load(state_dir), region: int(time.time())}
    path = state_dir / REGIONS_FILE
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(known, indent=0, sort_keys=True))
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not remember the AI region in %s (%s)", path, exc.strerror)


def _load(state_dir: Path) -> dict[str, int]:
    try:
        data = json.loads((state_dir / REGIONS_FILE).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError):
        log.warning("%s is unreadable; it will be written anew", state_dir / REGIONS_FILE)
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, int)}
