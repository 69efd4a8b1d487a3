"""``ai-job-tester outbox``: what a state directory holds back, still owes, or had refused."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..domain.rows import Row, row_from
from ..errors import StateDirError
from .outbox import ARCHIVE, HELD_JOURNAL, JOURNAL, REJECTED, Outbox
from .state import CycleLock


@dataclass(frozen=True, slots=True)
class Rejected:
    path: Path
    message: str
    row: dict[str, object]


@dataclass(frozen=True, slots=True)
class Inventory:
    held: list[Row]
    waiting: list[Row]
    rejected: list[Rejected]  # refused with 400, or dead-lettered after refusals
    archived: list[Row]  # retired unsent: too old to count as current


def read_inventory(state_dir: Path) -> Inventory:
    """List the rows of a state directory, under its lock so that no cycle writes meanwhile."""
    with CycleLock(state_dir):
        return Inventory(
            _rows(state_dir, HELD_JOURNAL), _rows(state_dir, JOURNAL), _rejected(state_dir), _archived(state_dir)
        )


def release_held(state_dir: Path) -> int:
    """Move every held row to the outbox, where the next run posts it first; return how many."""
    with CycleLock(state_dir):
        held, outbox = Outbox(state_dir, HELD_JOURNAL), Outbox(state_dir, JOURNAL)
        try:
            parcels = list(held.pending())
            for parcel in parcels:
                outbox.put(parcel.row)  # synced before the held copy is let go
                held.delivered(parcel)
        finally:
            held.close()
            outbox.close()
        return len(parcels)


def _rows(state_dir: Path, journal: str) -> list[Row]:
    box = Outbox(state_dir, journal)
    try:
        return [parcel.row for parcel in box.pending()]
    finally:
        box.close()


def _rejected(state_dir: Path) -> list[Rejected]:
    found = []
    for path in sorted((state_dir / REJECTED).glob("*.json")):
        try:
            document = json.loads(path.read_text())
            if not isinstance(document, dict):
                continue
        except (OSError, ValueError, RecursionError):
            continue
        row = document.get("row")
        found.append(Rejected(path, str(document.get("message", "")), row if isinstance(row, dict) else {}))
    return found


def _archived(state_dir: Path) -> list[Row]:
    path = state_dir / ARCHIVE
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StateDirError(f"cannot read {path} ({exc.strerror or exc}): move it aside and run again") from None
    found = []
    for line in lines:
        try:
            entry = json.loads(line)
            found.append(row_from(entry["row"], entry.get("kind")))
        except (ValueError, KeyError, TypeError, RecursionError):
            continue  # a line torn by a crash
    return found
