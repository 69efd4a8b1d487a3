"""The state directory: where rows wait for delivery, and the lock that keeps cycles apart.

Default: ``$XDG_STATE_HOME/ai-job-tester``, else ``~/.local/state/ai-job-tester``,
both writable by an ordinary user.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from ..errors import CycleLocked, StateDirError

LOCK_FILE = "lock"


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ai-job-tester"


def prepare_state_dir(path: Path) -> Path:
    """Create the directory (and parents) or say in one line why it cannot be used."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateDirError(
            f"cannot create the state directory {path} ({exc.strerror}); set stateDir or --state-dir"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise StateDirError(f"the state directory {path} is not writable; set stateDir or --state-dir")
    return path


class CycleLock:
    """An exclusive ``flock`` on ``<state dir>/lock``: the kernel drops it when the holder dies.

    >>> with CycleLock(Path("/tmp/state")):
    ...     pass  # one cycle at a time in this state dir
    """

    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateDirError(
                f"cannot open the lock file {self._path} ({exc.strerror}): if another user's run left it, "
                "remove it or give it to the user cron runs as"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise CycleLocked(
                f"another cycle (pid {holder}) is running with the state directory {self._path.parent}; "
                "this run did nothing"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> CycleLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
