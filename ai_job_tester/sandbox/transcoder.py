"""What a simulated orchestrator does with a segment, and how the gateway packs the result.

With ffmpeg on the PATH a segment is really transcoded (scaled to each profile, libx264,
same container, same duration), so a tester that probes the renditions sees the sizes it
asked for; without it each rendition is a copy of the segment. Tests push the same few
segments many times, so results are cached by (segment bytes, encoding settings).
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from .profiles import Profile

FFMPEG_SECONDS = 60.0
CONTENT_TYPES = {"ts": "video/mp2t", "mp4": "video/mp4"}
_MUXERS = {"ts": ["-f", "mpegts"], "mp4": ["-f", "mp4", "-movflags", "+faststart"]}


class TranscodeError(RuntimeError):
    """ffmpeg could not transcode the segment (undecodable input): the orchestrator's error text."""


class Transcoder:
    """Turns one segment into renditions; thread-safe, with a small cache."""

    def __init__(self, *, ffmpeg: str | None = None, cache_entries: int = 256) -> None:
        """``ffmpeg`` None finds it on the PATH; ``""`` copies the segment as every rendition."""
        self.ffmpeg = shutil.which("ffmpeg") if ffmpeg is None else (ffmpeg or None)
        self.runs = 0  # ffmpeg processes started: lets a test see the cache work
        self._cache: OrderedDict[tuple[str, tuple[object, ...]], bytes] = OrderedDict()
        self._cache_entries = cache_entries
        self._lock = threading.Lock()

    def renditions(self, segment: bytes, profiles: Sequence[Profile], *, container: str = "ts") -> list[bytes]:
        """One output per profile, in order. Raises TranscodeError when ffmpeg refuses the input."""
        if self.ffmpeg is None:
            return [segment for _ in profiles]
        digest = hashlib.sha256(segment).hexdigest()
        keys = [(digest, (*_settings(profile), container)) for profile in profiles]
        with self._lock:
            found = {key: self._cache[key] for key in keys if key in self._cache}
        missing = list(dict.fromkeys(key for key in keys if key not in found))
        if missing:
            wanted = [profiles[keys.index(key)] for key in missing]
            for key, data in zip(missing, self._run(segment, wanted, container), strict=True):
                found[key] = data
                self._remember(key, data)
        return [found[key] for key in keys]

    def _remember(self, key: tuple[str, tuple[object, ...]], data: bytes) -> None:
        with self._lock:
            self._cache[key] = data
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)

    def _run(self, segment: bytes, profiles: Sequence[Profile], container: str) -> list[bytes]:
        # One ffmpeg with an output per profile decodes the segment once.
        assert self.ffmpeg is not None
        with tempfile.TemporaryDirectory(prefix="sim-transcode-") as folder:
            source = Path(folder) / f"in.{container}"
            source.write_bytes(segment)
            command = [self.ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(source)]
            outputs = [Path(folder) / f"out{index}.{container}" for index in range(len(profiles))]
            for profile, output in zip(profiles, outputs, strict=True):
                command += [*_output_args(profile, container), str(output)]
            with self._lock:
                self.runs += 1
            try:
                done = subprocess.run(command, capture_output=True, timeout=FFMPEG_SECONDS, check=False)
            except subprocess.TimeoutExpired:
                raise TranscodeError("Transcode timed out") from None
            if done.returncode != 0:
                lines = done.stderr.decode(errors="replace").strip().splitlines()
                raise TranscodeError(lines[-1] if lines else "Invalid data found when processing input")
            return [output.read_bytes() for output in outputs]


def _settings(profile: Profile) -> tuple[object, ...]:
    return (profile.width, profile.height, profile.bitrate, profile.fps, profile.fps_den, profile.gop)


def _output_args(profile: Profile, container: str) -> list[str]:
    args = ["-map", "0:v:0", "-map", "0:a?", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    size = _even_size(profile)
    if size is not None:
        args += ["-vf", f"scale={size}"]
    if profile.bitrate > 0:
        args += ["-b:v", str(profile.bitrate)]
    if profile.fps > 0:
        args += ["-r", f"{profile.fps}/{profile.fps_den}" if profile.fps_den > 0 else str(profile.fps)]
    if profile.gop == "intra":
        args += ["-g", "1"]
    elif profile.gop:
        args += ["-g", str(max(1, round(float(profile.gop) * (profile.fps or 30))))]
    return [*args, "-c:a", "copy", *_MUXERS[container]]


def _even_size(profile: Profile) -> str | None:
    # libx264 in yuv420p needs even sizes; 0 on one side keeps the source's aspect ratio.
    if profile.width <= 0 and profile.height <= 0:
        return None
    width = max(2, profile.width - profile.width % 2) if profile.width > 0 else -2
    height = max(2, profile.height - profile.height % 2) if profile.height > 0 else -2
    return f"{width}:{height}"


def multipart(renditions: Sequence[tuple[str, bytes]], seq: int, *, container: str = "ts") -> tuple[bytes, str]:
    """The gateway's reply body and Content-Type: one part per (profile name, bytes), as Go writes it."""
    boundary = secrets.token_hex(10)
    media = CONTENT_TYPES[container]
    body = bytearray()
    for index, (name, data) in enumerate(renditions):
        file_name = f"{name}_{seq}.{container}"
        # Go's mime/multipart writes part headers sorted by key.
        head = (
            f'Content-Disposition: attachment; filename="{file_name}"\r\n'
            f"Content-Length: {len(data)}\r\n"
            f'Content-Type: {media}; name="{file_name}"\r\n'
            f"Rendition-Name: {name}\r\n\r\n"
        )
        lead = b"" if index == 0 else b"\r\n"  # the CRLF before a boundary belongs to the boundary
        body += lead + f"--{boundary}\r\n{head}".encode() + data
    body += f"\r\n--{boundary}--\r\n".encode()
    return bytes(body), f"multipart/mixed; boundary={boundary}"
