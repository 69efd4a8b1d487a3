"""The state directory's ``regions.json``: regions the leaderboard has confirmed, per row kind, and when.

When the leaderboard's regions cannot be read, a region confirmed by an earlier run is
trusted; any other region's rows wait in the outbox rather than risk a silent drop.

The file is ``{"ai": {"FRA": 1700000000}, "transcoding": {…}}``; an older flat
``{"FRA": 1700000000}`` (AI regions only) is read as the ``ai`` part.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

REGIONS_FILE = "regions.json"
KINDS = ("ai", "transcoding")

log = logging.getLogger("ai_job_tester")


def confirmed_region(state_dir: Path, region: str, kind: str = "ai") -> bool:
    """Tell whether an earlier run saw ``region`` listed as a region of this kind."""
    return region in _load(state_dir).get(kind, {})


def remember_region(state_dir: Path, region: str, kind: str = "ai") -> None:
    """Note that the leaderboard listed ``region`` as a region of this kind just now."""
    known = _load(state_dir)
    known[kind] = {**known.get(kind, {}), region: int(time.time())}
    path = state_dir / REGIONS_FILE
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(known, indent=0, sort_keys=True))
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not remember the %s region in %s (%s)", kind, path, exc.strerror)


def _load(state_dir: Path) -> dict[str, dict[str, int]]:
    try:
        data = json.loads((state_dir / REGIONS_FILE).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError):
        log.warning("%s is unreadable; it will be written anew", state_dir / REGIONS_FILE)
        return {}
    if not isinstance(data, dict):
        return {}
    if not any(kind in data and isinstance(data[kind], dict) for kind in KINDS):
        data = {"ai": data}  # written before transcoding rows existed: AI regions only
    return {
        kind: {str(k): v for k, v in data[kind].items() if isinstance(v, int)}
        for kind in KINDS
        if isinstance(data.get(kind), dict)
    }
