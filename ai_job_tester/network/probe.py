"""Reading a video's size and duration with ffprobe, where it is installed.

A rendition is probed from memory (piped to ffprobe), the segment file from disk. A
probe that fails, hangs past its limit or finds no ffprobe answers None: the caller
decides what that means.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..domain.transcode import Probe, parse_probe

PROBE_TIMEOUT_SECONDS = 15.0
_ENTRIES = ["-show_entries", "stream=width,height,duration:format=duration"]


def ffprobe() -> str | None:
    """The ffprobe executable on PATH, or None."""
    return shutil.which("ffprobe")


def probe_bytes(data: bytes, executable: str) -> Probe | None:
    """Probe a rendition held in memory."""
    return _run([executable, "-v", "error", "-select_streams", "v:0", *_ENTRIES, "-of", "json", "pipe:0"], data)


def probe_file(path: Path, executable: str) -> Probe | None:
    """Probe a file on disk."""
    return _run([executable, "-v", "error", "-select_streams", "v:0", *_ENTRIES, "-of", "json", str(path)], None)


def _run(command: list[str], data: bytes | None) -> Probe | None:
    try:
        done = subprocess.run(
            command, input=data if data is not None else b"", capture_output=True, timeout=PROBE_TIMEOUT_SECONDS,
            check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return parse_probe(done.stdout.decode("utf-8", errors="replace"))
