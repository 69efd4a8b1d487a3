"""Reading a video's size and duration with ffprobe, or with ffmpeg where only ffmpeg is installed.

The image ships a static ffmpeg without ffprobe, and a rendition's size is what catches a
gateway that copied the source instead of transcoding: so ffmpeg stands in, copying the
video stream to nowhere and reporting what it saw. A rendition is probed from memory
(piped), the segment file from disk. A probe that fails, hangs past its limit or finds
neither tool answers None: the caller decides what that means.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..domain.transcode import Probe, parse_ffmpeg_report, parse_probe

PROBE_TIMEOUT_SECONDS = 15.0
_ENTRIES = ["-show_entries", "stream=width,height,duration:format=duration"]


def ffprobe() -> str | None:
    """The tool that probes videos here: ffprobe on PATH, else ffmpeg, else None."""
    return shutil.which("ffprobe") or shutil.which("ffmpeg")


def probe_bytes(data: bytes, executable: str) -> Probe | None:
    """Probe a rendition held in memory."""
    return _probe("pipe:0", data, executable)


def probe_file(path: Path, executable: str) -> Probe | None:
    """Probe a file on disk."""
    return _probe(str(path), None, executable)


def _probe(source: str, data: bytes | None, executable: str) -> Probe | None:
    if Path(executable).name.startswith("ffprobe"):
        command = [executable, "-v", "error", "-select_streams", "v:0", *_ENTRIES, "-of", "json", source]
        done = _run(command, data)
        return None if done is None or done.returncode != 0 else parse_probe(_text(done.stdout))
    command = [executable, "-hide_banner", "-nostdin", "-i", source, "-map", "0:v:0", "-c", "copy", "-f", "null", "-"]
    done = _run(command, data)
    return None if done is None or done.returncode != 0 else parse_ffmpeg_report(_text(done.stderr))


def _run(command: list[str], data: bytes | None) -> subprocess.CompletedProcess[bytes] | None:
    try:
        return subprocess.run(
            command, input=data if data is not None else b"", capture_output=True, timeout=PROBE_TIMEOUT_SECONDS,
            check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None


def _text(output: bytes) -> str:
    return output.decode("utf-8", errors="replace")
