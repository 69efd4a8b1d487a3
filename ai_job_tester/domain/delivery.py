"""What the leaderboard said to rows, as data. Pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the leaderboard said to one row."""

    delivered: bool
    status: int | None = None
    message: str = ""
    held: bool = False  # kept back by the health gate, not sent
    queued: bool = False  # stored and waiting for the courier's answer


@dataclass(frozen=True, slots=True)
class Delivered:
    """Rows posted from the outbox outside the jobs' own posts."""

    delivered: int = 0
    rejected: int = 0
