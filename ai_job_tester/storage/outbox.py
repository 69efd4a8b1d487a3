"""Rows on disk until the leaderboard has them: nothing is lost to an outage or a kill.

Layout under the state directory::

    outbox.jsonl                   an append-only journal: a line per stored row, and a
                                   line per row the leaderboard answered
    held.jsonl                     the same, for rows the health gate holds back
    rejected/<id>.json             a row refused with HTTP 400, with the server's message

A row's line is appended and ``fdatasync``-ed before the row is posted. An answer's line
is appended without a sync: if it is lost in a crash, the row is posted once more, which
at-least-once delivery allows. Opening the outbox compacts the journal to the rows still
waiting (written aside, synced, renamed into place). A line torn by a crash mid-write is
skipped: that row was never posted.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ..domain.rows import LeaderboardRow

JOURNAL = "outbox.jsonl"
HELD_JOURNAL = "held.jsonl"  # rows the health gate keeps back (see ``gate.py``)
REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Parcel:
    """A row waiting in the outbox, and its id in the journal."""

    id: str
    row: LeaderboardRow


class Outbox:
    """The waiting and rejected rows of one state directory; one writer at a time (the cycle lock)."""

    def __init__(self, state_dir: Path, journal: str = JOURNAL) -> None:
        self._journal = state_dir / journal
        self._rejected = state_dir / REJECTED
        self._rejected.mkdir(parents=True, exist_ok=True)
        self._waiting = self._load()
        self._compact()
        self._fd = os.open(self._journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def put(self, row: LeaderboardRow) -> Parcel:
        """Store the row durably; return it as a parcel to post."""
        parcel = Parcel(f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}", row)
        self._append({"id": parcel.id, "row": row.model_dump(mode="json")}, sync=True)
        self._waiting[parcel.id] = parcel
        return parcel

    def pending(self) -> Iterator[Parcel]:
        """Yield the waiting rows, oldest first."""
        yield from list(self._waiting.values())

    def count(self) -> int:
        return len(self._waiting)

    def delivered(self, parcel: Parcel) -> None:
        self._done(parcel, "delivered")

    def reject(self, parcel: Parcel, message: str) -> None:
        """Move a row the leaderboard refused aside, with its answer, for a person to read."""
        document = {"rejected_at": int(time.time()), "message": message, "row": parcel.row.model_dump(mode="json")}
        _write_durably(self._rejected / f"{parcel.id}.json", json.dumps(document, indent=2).encode())
        self._done(parcel, "rejected")

    def _done(self, parcel: Parcel, how: str) -> None:
        if self._waiting.pop(parcel.id, None) is not None:
            self._append({"id": parcel.id, "done": how}, sync=False)

    def _append(self, entry: dict[str, object], *, sync: bool) -> None:
        os.write(self._fd, json.dumps(entry, separators=(",", ":")).encode() + b"\n")
        if sync:
            os.fdatasync(self._fd)

    def _load(self) -> dict[str, Parcel]:
        waiting: dict[str, Parcel] = {}
        try:
            lines = self._journal.read_bytes().splitlines()
        except FileNotFoundError:
            return waiting
        for line in lines:
            try:
                entry = json.loads(line)
                if "row" in entry:
                    waiting[entry["id"]] = Parcel(entry["id"], LeaderboardRow.model_validate(entry["row"]))
                else:
                    waiting.pop(entry["id"], None)
            except (ValueError, KeyError, TypeError, ValidationError):
                continue  # a line torn by a crash: its row had not been posted
        return waiting

    def _compact(self) -> None:
        lines = b"".join(
            json.dumps({"id": p.id, "row": p.row.model_dump(mode="json")}, separators=(",", ":")).encode() + b"\n"
            for p in self._waiting.values()
        )
        _write_durably(self._journal, lines)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
