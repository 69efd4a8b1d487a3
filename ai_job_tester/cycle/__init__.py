"""Running a cycle: wiring, lanes, the scheduler, recording and delivering results, live passes, signals."""

from .observer import Observer, SilentObserver
from .runner import RunOptions, run_cycle

__all__ = ["Observer", "RunOptions", "SilentObserver", "run_cycle"]
