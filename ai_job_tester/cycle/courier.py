"""Delivery policy: every row goes through the outbox; what each leaderboard answer means.

=============================  ================================================
200                            delivered: removed from the outbox
400                            rejected: moved to ``rejected/`` with the message
403                            the secret is wrong: stop posting for this run
refused, timeout, 5xx          kept in the outbox for the next run; after
                               ``GIVE_UP_AFTER`` such failures in a row, stop
                               posting for this run
=============================  ================================================
"""

from __future__ import annotations

import logging
import time

from ..domain.delivery import Delivered, Delivery
from ..domain.rows import LeaderboardRow
from ..network.leaderboard import Leaderboard
from ..storage.outbox import Outbox, Parcel

log = logging.getLogger("ai_job_tester")

GIVE_UP_AFTER = 3


class Courier:
    """Posts rows through the outbox and remembers why posting stopped, if it did."""

    def __init__(self, leaderboard: Leaderboard, outbox: Outbox) -> None:
        self.leaderboard = leaderboard
        self._outbox = outbox
        self._transient_in_a_row = 0
        self.stopped: str | None = None

    def send(self, row: LeaderboardRow) -> Delivery:
        """Store the row durably, then post it unless posting has stopped."""
        parcel = self._outbox.put(row)
        if self.stopped is not None:
            return Delivery(False, None, f"kept in the outbox: {self.stopped}")
        return self._post(parcel)

    def flush(self, *, deadline: float | None = None) -> Delivered:
        """Post the rows earlier runs (or this one) left behind, oldest first, until ``deadline``."""
        delivered = rejected = 0
        for parcel in self._outbox.pending():
            if self.stopped is not None or (deadline is not None and time.monotonic() > deadline):
                break
            delivery = self._post(parcel)
            delivered += delivery.delivered
            rejected += delivery.status == 400
        return Delivered(delivered, rejected)

    def _post(self, parcel: Parcel) -> Delivery:
        delivery = self.leaderboard.post(parcel.row)
        if delivery.delivered:
            self._transient_in_a_row = 0
            self._outbox.delivered(parcel)
        elif delivery.status == 400:
            self._transient_in_a_row = 0
            self._outbox.reject(parcel, delivery.message)
            log.warning("the leaderboard rejected a row (%s); it is kept in rejected/", delivery.message)
        elif delivery.status == 403:
            self.stopped = "the leaderboard refused the signature (HTTP 403): metricsSecret is wrong"
            log.error("%s; posting stopped, every row is kept in the outbox", self.stopped)
        else:
            self._transient_in_a_row += 1
            if self._transient_in_a_row >= GIVE_UP_AFTER:
                self.stopped = f"the leaderboard failed {GIVE_UP_AFTER} posts in a row ({delivery.message})"
                log.error("%s; posting stopped, every row is kept in the outbox for the next run", self.stopped)
        return delivery
