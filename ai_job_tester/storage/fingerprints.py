"""The state directory's ``fingerprints.json``: recent outputs' fingerprints, to catch replays across cycles.

Bounded: fingerprints older than ``KEEP_SECONDS`` are dropped, and at most ``MAX_SIGHTINGS``
are kept (the newest), about 220 bytes each, so the file never passes about 11 MB. It is
written atomically at the end of each cycle; a damaged file is set aside
(``fingerprints.json.broken``) and memory starts afresh: that only forgets, it never
blames anyone.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..domain.fingerprints import Kind, Sighting, Tally

FINGERPRINTS_FILE = "fingerprints.json"
KEEP_SECONDS = 7 * 24 * 3600
"""A week: a cache that answers a request of last week with that week's output is still caught."""
MAX_SIGHTINGS = 50_000

log = logging.getLogger("ai_job_tester")

_Entry = tuple[Kind, str, str, str, str, int, str]  # kind, digest, orchestrator, pipeline, model, at, request


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)

    version: Literal[1] = 1
    checked: int = Field(default=0, ge=0)
    replayed: int = Field(default=0, ge=0)
    sightings: list[_Entry] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Memory:
    """What the file holds: the fingerprints kept, and the lifetime tally."""

    sightings: tuple[Sighting, ...] = ()
    tally: Tally = field(default_factory=Tally)


def load(state_dir: Path) -> Memory:
    """Read the file; a missing one is an empty memory, a damaged one is set aside and starts afresh."""
    path = state_dir / FINGERPRINTS_FILE
    try:
        data = _File.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return Memory()
    except (OSError, ValueError, ValidationError, RecursionError) as exc:
        aside = path.with_name(path.name + ".broken")
        with contextlib.suppress(OSError):  # if it cannot even be moved, saving at the end says so
            os.replace(path, aside)
        log.warning("%s was unreadable (%s); set aside as %s, and replays are checked against this cycle only",
                    path, type(exc).__name__, aside.name)  # fmt: skip
        return Memory()
    return Memory(tuple(Sighting(*entry) for entry in data.sightings), Tally(data.checked, data.replayed))


def save(state_dir: Path, memory: Memory) -> None:
    """Write the file atomically; a failure is a warning, for the next cycle only forgets older outputs."""
    path = state_dir / FINGERPRINTS_FILE
    tmp = path.with_name(path.name + ".tmp")
    document = _File(
        checked=memory.tally.checked,
        replayed=memory.tally.replayed,
        sightings=[(s.kind, s.digest, s.orchestrator, s.pipeline, s.model, s.at, s.request) for s in memory.sightings],
    )
    try:
        tmp.write_text(document.model_dump_json(), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not write %s (%s); the next cycle checks replays against its own outputs only",
                    path, exc.strerror)  # fmt: skip
