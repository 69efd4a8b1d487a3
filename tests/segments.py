"""A test segment made with ffmpeg, as the transcoding contract's §5 makes it (2 s, 640x360, keyframe first)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FFMPEG_SEGMENT = [
    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
    "-t", "2", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-pix_fmt", "yuv420p", "-g", "60",
    "-keyint_min", "60", "-sc_threshold", "0", "-b:v", "1000k", "-c:a", "aac", "-b:a", "64k", "-ac", "2",
    "-f", "mpegts",
]  # fmt: skip


def make_segment(path: Path) -> Path:
    """Write the contract's test segment to ``path`` (skips the test where ffmpeg is missing)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed")
    subprocess.run([ffmpeg, "-v", "error", "-y", *FFMPEG_SEGMENT, str(path)], check=True, timeout=60)
    return path


@pytest.fixture(scope="session")
def segment_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_segment(tmp_path_factory.mktemp("segment") / "seg.ts")
