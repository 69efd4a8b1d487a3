"""Rows on disk until the leaderboard has them: nothing is lost to an outage or a kill.

Layout under the state directory::

    outbox.jsonl                   an append-only journal: a line per stored row, a line per
                                   failed attempt, and a line per row that left the outbox
    held.jsonl                     the same, for rows the health gate holds back
    rejected/<id>.json             a row set aside: refused with HTTP 400, or refused again and
                                   again while the leaderboard took other rows (dead-lettered)
    archive.jsonl                  rows retired unsent because they grew too old to count as current

A row's line (``{"id", "kind", "row"}``, ``kind`` being ``ai`` or ``transcoding``; a line
without one was written before transcoding rows existed and holds an AI row) is appended
and ``fdatasync``-ed before the row is posted. An outbox opened with ``sync_behind=True``
(the cycle's) appends in ``put`` and leaves the ``fdatasync`` to its own thread, so the
lane that stored the row goes on with its bookkeeping meanwhile; ``wait_synced`` returns
once every line appended so far is on disk, and whoever needs the row durable (the lane
before its next job, the courier before a post) calls it. Other lines are
appended without a sync: if one is lost in a crash, the row is posted once more (or one
attempt is forgotten), which at-least-once delivery allows. Opening the outbox compacts
the journal to the rows still waiting (written aside, synced, renamed into place). A line
torn by a crash mid-write is skipped: that row was never posted.

The lanes store rows while the courier's thread posts them: every method takes the lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..domain.rows import Row, kind_of, row_from
from ..errors import StateDirError

JOURNAL = "outbox.jsonl"
HELD_JOURNAL = "held.jsonl"  # rows the health gate keeps back (see ``domain/gate.py``)
REJECTED = "rejected"
ARCHIVE = "archive.jsonl"
_SAFE_ID = re.compile(r"[0-9A-Za-z_-]{1,100}")


@dataclass(frozen=True, slots=True)
class Parcel:
    """A row waiting in the outbox, its id in the journal, and how many posts of it failed."""

    id: str
    row: Row
    attempts: int = 0


class Outbox:
    """The waiting and set-aside rows of one state directory; one cycle at a time (the cycle lock)."""

    def __init__(self, state_dir: Path, journal: str = JOURNAL, *, sync_behind: bool = False) -> None:
        self._state_dir = state_dir
        self._journal = state_dir / journal
        self._rejected = state_dir / REJECTED
        self._lock = threading.Lock()
        self._fd = -1
        # Syncing behind: rows appended (``_appended``) and rows on disk (``_synced``), counted.
        self._sync_behind = sync_behind
        self._synced_cond = threading.Condition(self._lock)
        self._appended = self._synced = 0
        self._sync_error: StateDirError | None = None
        self._syncer: threading.Thread | None = None
        _usable_file(self._journal)
        try:
            self._rejected.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # named for itself: the journal is fine
            raise _unusable(self._rejected, exc) from None
        try:
            self._unreadable: list[tuple[str, Any, str]] = []
            self._waiting = self._load()
            self._set_aside_unreadable()
            self._compact()
            self._fd = os.open(self._journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise _unusable(self._journal, exc) from None

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, -1
            self._synced_cond.notify_all()  # the syncer stops; what it had not reached is synced here
        if self._syncer is not None:
            self._syncer.join()
        if fd < 0:
            return
        try:
            if self._synced < self._appended and self._sync_error is None:  # rows the syncer had not reached
                os.fdatasync(fd)
                self._synced = self._appended
        except OSError as exc:
            raise _unusable(self._journal, exc) from None
        finally:
            os.close(fd)

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def put(self, row: Row) -> Parcel:
        """Store the row durably (syncing behind: once ``wait_synced`` returns); return it as a parcel to post."""
        parcel = Parcel(f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}", row)
        line = _line({"id": parcel.id, **_row_entry(row)})  # encoded before taking the lock the courier needs too
        with self._lock:
            if not self._sync_behind:
                self._write(line, sync=True)
            else:
                self._write(line, sync=False)
                self._appended += 1
                self._start_syncer()
                self._synced_cond.notify_all()
            self._waiting[parcel.id] = parcel
        return parcel

    def wait_synced(self) -> None:
        """Return once every row appended so far is on disk; raise ``StateDirError`` if a sync failed."""
        with self._lock:
            target = self._appended
            while self._synced < target and self._sync_error is None and self._fd >= 0:
                self._synced_cond.wait()
            if self._sync_error is not None:
                raise self._sync_error

    def _start_syncer(self) -> None:
        if self._syncer is None:
            self._syncer = threading.Thread(target=self._sync_loop, name="outbox-sync", daemon=True)
            self._syncer.start()

    def _sync_loop(self) -> None:
        """Sync whatever has been appended, many rows in one ``fdatasync`` when they came together."""
        while True:
            with self._lock:
                while self._synced >= self._appended and self._fd >= 0:
                    self._synced_cond.wait()
                fd, target = self._fd, self._appended
                if fd < 0:
                    return  # closing: ``close`` syncs what is left
            try:
                os.fdatasync(fd)  # without the lock: lanes append (and the courier notes answers) meanwhile
            except OSError as exc:
                with self._lock:
                    self._sync_error = _unusable(self._journal, exc)
                    self._synced_cond.notify_all()
                return
            with self._lock:
                self._synced = target
                self._synced_cond.notify_all()

    def pending(self) -> Iterator[Parcel]:
        """Yield the waiting rows, fewest failed attempts first, then oldest first.

        A row the leaderboard keeps refusing goes to the back, so it never holds up the others.
        """
        with self._lock:
            parcels = sorted(self._waiting.values(), key=lambda p: (p.attempts, p.id))
        yield from parcels

    def count(self) -> int:
        with self._lock:
            return len(self._waiting)

    def delivered(self, parcel: Parcel) -> None:
        self._done(parcel, "delivered")

    def failed(self, parcel: Parcel, message: str) -> Parcel:
        """Count one more failed post of the row (it stays); return it with its new count."""
        with self._lock:
            current = self._waiting.get(parcel.id)
            if current is None:
                return parcel
            updated = replace(current, attempts=current.attempts + 1)
            self._waiting[parcel.id] = updated
            self._append({"id": parcel.id, "failed": message[:500]}, sync=False)
        return updated

    def reject(self, parcel: Parcel, message: str) -> None:
        """Move a row the leaderboard will not take aside, with the reason, for a person to read."""
        document = {"rejected_at": int(time.time()), "message": message, **_row_entry(parcel.row)}
        try:
            _write_durably(self._rejected / f"{_file_name(parcel.id)}.json", json.dumps(document, indent=2).encode())
        except OSError as exc:
            raise _unusable(self._rejected, exc) from None
        self._done(parcel, "rejected")

    def retire(self, parcel: Parcel, why: str) -> None:
        """Move a row that must not be posted any more to the archive, with the reason."""
        line = json.dumps({"retired_at": int(time.time()), "why": why, **_row_entry(parcel.row)})
        path = self._state_dir / ARCHIVE
        try:
            with self._lock, path.open("a", encoding="utf-8") as archive:
                archive.write(line + "\n")
        except OSError as exc:
            raise _unusable(path, exc) from None
        self._done(parcel, "retired")

    def _done(self, parcel: Parcel, how: str) -> None:
        with self._lock:
            if self._waiting.pop(parcel.id, None) is not None:
                self._append({"id": parcel.id, "done": how}, sync=False)

    def _append(self, entry: dict[str, object], *, sync: bool) -> None:
        self._write(_line(entry), sync=sync)

    def _write(self, line: bytes, *, sync: bool) -> None:
        try:
            os.write(self._fd, line)
            if sync:
                os.fdatasync(self._fd)
        except OSError as exc:
            raise _unusable(self._journal, exc) from None

    def _load(self) -> dict[str, Parcel]:
        waiting: dict[str, Parcel] = {}
        try:
            lines = self._journal.read_bytes().splitlines()
        except FileNotFoundError:
            return waiting
        for line in lines:
            try:
                entry = json.loads(line)
                key = entry["id"]
                if "row" in entry:
                    try:
                        row = row_from(entry["row"], entry.get("kind"))
                        waiting[key] = Parcel(key, row, int(entry.get("attempts", 0)))
                    except (ValidationError, ValueError) as exc:  # whole, but not a row this version can post
                        self._unreadable.append((key, entry["row"], str(exc).splitlines()[0]))
                elif "failed" in entry and key in waiting:
                    waiting[key] = replace(waiting[key], attempts=waiting[key].attempts + 1)
                else:
                    waiting.pop(key, None)
            except (ValueError, KeyError, TypeError, ValidationError, RecursionError):
                continue  # a line torn by a crash: its row had not been posted
        return waiting

    def _set_aside_unreadable(self) -> None:
        for key, raw, problem in self._unreadable:
            document = {"rejected_at": int(time.time()), "message": f"could not be read back ({problem})", "row": raw}
            _write_durably(self._rejected / f"{_file_name(key)}.json", json.dumps(document, indent=2).encode())

    def _compact(self) -> None:
        lines = b"".join(
            json.dumps({"id": p.id, **_row_entry(p.row), "attempts": p.attempts}, separators=(",", ":")).encode()
            + b"\n"
            for p in self._waiting.values()
        )
        _write_durably(self._journal, lines)


def _line(entry: dict[str, object]) -> bytes:
    return json.dumps(entry, separators=(",", ":")).encode() + b"\n"


def _row_entry(row: Row) -> dict[str, Any]:
    """A row as the journal, the archive and ``rejected/`` keep it: which kind, and its fields."""
    return {"kind": kind_of(row), "row": row.model_dump(mode="json")}


def _usable_file(path: Path) -> None:
    """Refuse, in one line, a journal that is not a regular file (a directory, a device)."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _unusable(path, exc) from None
    if not stat.S_ISREG(mode):
        raise StateDirError(f"{path} is not a regular file; move it out of the way (rows it held are lost)")


def _file_name(parcel_id: str) -> str:
    # Ids are ours, but the journal is a file on disk: never let one name a path outside rejected/.
    if _SAFE_ID.fullmatch(parcel_id):
        return parcel_id
    return "id-" + hashlib.sha256(parcel_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _unusable(path: Path, exc: OSError) -> StateDirError:
    return StateDirError(
        f"cannot use {path} ({exc.strerror or exc}): check its owner and permissions, and the free disk space"
    )


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
