"""Rows on disk until the leaderboard has them: nothing is lost to an outage or a kill.

Layout under the state directory::

    outbox/<ns-time>-<id>.json     waiting for delivery, sent oldest first
    rejected/<ns-time>-<id>.json   refused with HTTP 400: the row and the server's message

Each row is written to a temporary file, fsynced, renamed into place and the folder
fsynced, before it is posted; it is deleted only after the leaderboard answered 200.
A crash therefore leaves every row either absent (the job never finished) or whole.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .rows import LeaderboardRow

PENDING = "outbox"
REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Parcel:
    """A row waiting in the outbox, and the file that holds it."""

    path: Path
    row: LeaderboardRow


class Outbox:
    """The pending and rejected rows of one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self._pending = state_dir / PENDING
        self._rejected = state_dir / REJECTED
        self._pending.mkdir(parents=True, exist_ok=True)
        self._rejected.mkdir(parents=True, exist_ok=True)

    def put(self, row: LeaderboardRow) -> Parcel:
        """Write the row durably; return it as a parcel to post."""
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.json"
        _write_durably(self._pending / name, row.model_dump_json().encode())
        return Parcel(self._pending / name, row)

    def pending(self) -> Iterator[Parcel]:
        """Yield the waiting rows, oldest first; an unreadable file is moved aside, not lost."""
        for path in sorted(self._pending.glob("*.json")):
            try:
                row = LeaderboardRow.model_validate_json(path.read_bytes())
            except (OSError, ValueError) as exc:
                self._set_aside(path, f"unreadable outbox file: {exc}")
                continue
            yield Parcel(path, row)

    def count(self) -> int:
        return sum(1 for _ in self._pending.glob("*.json"))

    def rejected_count(self) -> int:
        return sum(1 for _ in self._rejected.glob("*.json"))

    def delivered(self, parcel: Parcel) -> None:
        parcel.path.unlink(missing_ok=True)

    def reject(self, parcel: Parcel, message: str) -> None:
        """Move a row the leaderboard refused aside, with its answer, for a person to read."""
        document = {"rejected_at": int(time.time()), "message": message, "row": parcel.row.model_dump(mode="json")}
        _write_durably(self._rejected / parcel.path.name, json.dumps(document, indent=2).encode())
        parcel.path.unlink(missing_ok=True)

    def _set_aside(self, path: Path, message: str) -> None:
        document = {"rejected_at": int(time.time()), "message": message, "raw": path.read_text(errors="replace")}
        _write_durably(self._rejected / path.name, json.dumps(document, indent=2).encode())
        path.unlink(missing_ok=True)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
