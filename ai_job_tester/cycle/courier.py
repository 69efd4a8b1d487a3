"""Delivery: rows are stored by the lanes and posted by the courier's own thread, in order.

A row is on disk before it is posted: the outbox syncs its journal behind the lanes (see
``storage/outbox.py``), and the courier waits for that sync before each post.

Posting off the lanes keeps a slow or stuck leaderboard from holding a lane, the cycle's
lock or a signal, and keeps the POST out of the time between two measurements.

What each answer means:

=============================  =====================================================
200                            delivered: the row leaves the outbox
400                            rejected: moved to ``rejected/`` with the message
403                            the secret is wrong: posting stops for this run
refused, timeout, 5xx          the row stays and its failed attempts are counted; a
                               row refused ``DEAD_AFTER`` times (across runs) while the
                               leaderboard took other rows is set aside in ``rejected/``
                               (dead-lettered); after ``GIVE_UP_AFTER`` failures in a
                               row of rows that are not already suspects, posting stops
                               for this run if the leaderboard itself looks down (its
                               regions do not answer either)
older than ``max_age``         retired to ``archive.jsonl`` unsent: the leaderboard would
                               score it as a measurement taken when it arrives
=============================  =====================================================
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..domain.delivery import Delivered, Delivery
from ..domain.rows import Row
from ..network.leaderboard import Leaderboard
from ..storage.outbox import Outbox, Parcel

log = logging.getLogger("ai_job_tester")

GIVE_UP_AFTER = 3
DEAD_AFTER = 3

OnDone = Callable[[Delivery], None]


@dataclass(frozen=True, slots=True)
class _Item:
    parcel: Parcel
    on_done: OnDone | None
    tag: str  # "earlier", "job" or "late": which count a delivery goes to


class Courier:
    """Posts stored rows from its own thread; ``stopped`` says why posting stopped, if it did."""

    def __init__(self, leaderboard: Leaderboard, outbox: Outbox, *, max_age: float | None = None) -> None:
        self.leaderboard = leaderboard
        self._outbox = outbox
        self._max_age = max_age
        self._queue: deque[_Item] = deque()
        self._queued: set[str] = set()
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._failed_in_a_row = 0
        self._delivered_this_run = 0
        self.stopped: str | None = None
        self.counts: dict[str, Delivered] = {"earlier": Delivered(), "job": Delivered(), "late": Delivered()}
        self.retired = 0
        self._thread = threading.Thread(target=self._loop, name="courier", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop_posting(self, why: str) -> None:
        """Post nothing more in this run; every row stays in the outbox."""
        self.stopped = self.stopped or why

    def queue_waiting(self, tag: str) -> int:
        """Queue the rows waiting in the outbox (fewest failures, then oldest, first); return how many."""
        items = [_Item(p, None, tag) for p in self._outbox.pending()]
        with self._cond:
            fresh = [item for item in items if item.parcel.id not in self._queued]
            self._enqueue(fresh)
        return len(fresh)

    def send(self, row: Row, on_done: OnDone | None = None) -> Parcel:
        """Store the row (appended in the caller's thread, synced before ``settle`` returns), then queue it.

        ``on_done`` hears the answer.
        """
        parcel = self._outbox.put(row)
        with self._cond:
            self._enqueue([_Item(parcel, on_done, "job")])
        return parcel

    def settle(self) -> None:
        """Return once every row sent so far is on disk (``StateDirError`` if the disk failed it)."""
        self._outbox.wait_synced()

    def drain(self, deadline: float | None = None) -> bool:
        """Wait until every queued row has an answer, or until ``deadline`` (monotonic); tell whether it did."""
        with self._cond:
            while self._queue or self._busy:
                if self._thread.ident is not None and not self._thread.is_alive():
                    return False  # the courier died: nothing will ever answer, and the rows stay stored
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(min(left, 0.5) if left is not None else 0.5)
        return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _enqueue(self, items: list[_Item]) -> None:
        self._queue.extend(items)
        self._queued.update(item.parcel.id for item in items)
        self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                item = self._queue.popleft()
                self._busy = True
            try:
                delivery = self._deliver(item)
            except Exception as exc:  # a broken outbox must not kill delivery silently
                log.error("delivery failed: %s", exc)
                delivery = Delivery(False, None, f"kept in the outbox: {exc}")
            finally:
                with self._cond:
                    self._queued.discard(item.parcel.id)
            try:
                if item.on_done is not None:
                    item.on_done(delivery)
            except Exception as exc:  # the row's fate is settled; a broken listener must not stop the others
                log.error("recording a delivery failed: %s", exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _deliver(self, item: _Item) -> Delivery:
        parcel = item.parcel
        self._outbox.wait_synced()  # never post a row that a kill could still take off the disk
        if self.stopped is not None:
            return Delivery(False, None, f"kept in the outbox: {self.stopped}")
        age = time.time() - parcel.row.timestamp
        if self._max_age is not None and age > self._max_age:
            why = f"measured {age / 3600:.1f} h ago, older than maxRowAgeSeconds ({self._max_age:g} s)"
            self._outbox.retire(parcel, why)
            self.retired += 1
            log.warning("a row was retired to archive.jsonl unsent: %s", why)
            return Delivery(False, None, f"retired: {why}")
        delivery = self.leaderboard.post(parcel.row)
        self._judge(parcel, delivery, item.tag)
        return delivery

    def _judge(self, parcel: Parcel, delivery: Delivery, tag: str) -> None:
        count = self.counts[tag]
        if delivery.delivered:
            self._failed_in_a_row = 0
            self._delivered_this_run += 1
            self._outbox.delivered(parcel)
            self.counts[tag] = Delivered(count.delivered + 1, count.rejected)
        elif delivery.status == 400:
            self._failed_in_a_row = 0
            self._outbox.reject(parcel, delivery.message)
            self.counts[tag] = Delivered(count.delivered, count.rejected + 1)
            log.warning("the leaderboard rejected a row (%s); it is kept in rejected/", delivery.message)
        elif delivery.status == 403:
            self.stop_posting("the leaderboard refused the signature (HTTP 403): metricsSecret is wrong")
            log.error("%s; posting stopped, every row is kept in the outbox", self.stopped)
        else:
            self._failed(parcel, delivery, tag)

    def _failed(self, parcel: Parcel, delivery: Delivery, tag: str) -> None:
        suspect = parcel.attempts > 0  # refused before: more likely the row than the leaderboard
        parcel = self._outbox.failed(parcel, delivery.message)
        if parcel.attempts >= DEAD_AFTER and self._delivered_this_run:
            why = (
                f"refused {parcel.attempts} times ({delivery.message}) while the leaderboard took other rows: "
                "set aside so that it no longer holds up the others"
            )
            self._outbox.reject(parcel, why)
            count = self.counts[tag]
            self.counts[tag] = Delivered(count.delivered, count.rejected + 1)
            log.warning("a row was dead-lettered to rejected/: %s", why)
            return
        if delivery.status is None or not suspect:  # unreachable, or a fresh row refused
            self._failed_in_a_row += 1
        if self._failed_in_a_row < GIVE_UP_AFTER:
            return
        self._failed_in_a_row = 0
        if delivery.status is not None and self.leaderboard.ai_regions() is not None:
            log.warning("the leaderboard refused %d rows in a row but answers: going on; they are tried again later",
                        GIVE_UP_AFTER)  # fmt: skip
            return
        self.stop_posting(f"the leaderboard failed {GIVE_UP_AFTER} posts in a row ({delivery.message})")
        log.error("%s; posting stopped, every row is kept in the outbox for the next run", self.stopped)
