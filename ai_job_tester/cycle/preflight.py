"""The leaderboard preflight: the region must be of each kind of row the cycle posts.

The leaderboard joins a row's region by name *and* job type, and a region without the
row's type stores nothing yet answers 200: a cycle that posted into it would lose every
row silently. So before any job: the region is checked for each kind (``ai``,
``transcoding``); a region of the wrong type stops the run; regions that cannot be read
hold the rows (not posted, not lost) unless an earlier run confirmed the region.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from ..errors import LeaderboardRegionError
from ..storage.regions import confirmed_region, remember_region
from .courier import Courier

log = logging.getLogger("ai_job_tester")

REGION_KINDS = {"ai": "AI", "transcoding": "transcoding"}
"""The leaderboard's region types (``GET /api/regions``), as a sentence names them."""


def check_regions(courier: Courier, state_dir: Path, region: str, kinds: Iterable[str]) -> None:
    """Check ``region`` for every kind of row; raise ``LeaderboardRegionError`` for a region of the wrong type."""
    for kind in kinds:
        _check(courier, state_dir, region, kind)


def _check(courier: Courier, state_dir: Path, region: str, kind: str) -> None:
    label = REGION_KINDS[kind]
    named = f"an {label}" if label == "AI" else f"a {label}"
    regions = courier.leaderboard.regions(kind)
    if regions is None:
        if confirmed_region(state_dir, region, kind):
            log.warning("could not read the leaderboard's regions; %s was %s region before: posting", region, named)
            return
        courier.stop_posting(
            f"the leaderboard's regions could not be read and no earlier run confirmed {region} as {named} "
            f"region (a region of another type drops {kind} rows silently): rows wait in the outbox"
        )
        log.error("%s", courier.stopped)
    elif region not in regions:
        raise LeaderboardRegionError(
            f"region {region!r} is not {named} region on the leaderboard, which would drop every "
            f"{'' if kind == 'ai' else kind + ' '}row; its {label} regions are: {', '.join(regions) or 'none'}"
        )
    else:
        remember_region(state_dir, region, kind)
