"""A total deadline for a network call: connect, headers and body together.

httpx's timeouts bound each read, so a peer that drips a byte every few seconds holds a
request for ever. ``within`` runs the call in a worker thread and gives up on it when the
deadline passes; the caller moves on at once. The abandoned worker ends on its own per-read
timeout (callers pass ``read_timeout``), so no thread outlives the deadline by much.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class DeadlineExceeded(TimeoutError):
    """Raised by ``within`` when the call has not finished by its deadline."""


def within(seconds: float, call: Callable[[], T], *, what: str) -> T:
    """Return ``call()``'s result, or raise ``DeadlineExceeded`` once ``seconds`` have passed.

    Exceptions of the call are raised in the caller. Waiting is interruptible: a signal
    handler that raises (SIGTERM) ends the wait at once.
    """
    done = threading.Event()
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the caller, whatever it is
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name=f"deadline:{what}", daemon=True).start()
    if not done.wait(seconds):
        raise DeadlineExceeded(f"{what} did not finish within {seconds:g} s")
    if failure:
        raise failure[0]
    return outcome[0]
