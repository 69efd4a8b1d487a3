"""Judging the media a reply points at: it must exist, be non-empty and be of the right kind. Pure.

``network.media.fetch`` does the download, off the round-trip clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

HEAD_BYTES = 16


class MediaKind(StrEnum):
    IMAGE = "image"  # PNG or JPEG
    VIDEO = "video"  # MP4
    SPEECH = "speech"  # WAV

    def matches(self, head: bytes) -> bool:
        if self is MediaKind.IMAGE:
            return head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"))
        if self is MediaKind.VIDEO:
            return head[4:8] == b"ftyp"
        return head.startswith(b"RIFF") and head[8:12] == b"WAVE"


_KIND_BY_ROUTE = {
    "text-to-image": MediaKind.IMAGE,
    "image-to-image": MediaKind.IMAGE,
    "upscale": MediaKind.IMAGE,
    "image-to-video": MediaKind.VIDEO,
    "text-to-speech": MediaKind.SPEECH,
}


@dataclass(frozen=True, slots=True)
class MediaTarget:
    url: str
    kind: MediaKind


@dataclass(frozen=True, slots=True)
class MediaFetch:
    """What downloading the media gave: status, first bytes, size, time; or why it failed."""

    seconds: float
    status: int | None = None
    head: bytes = b""
    size: int = 0
    error: str | None = None


def media_target(route: str, body: bytes) -> MediaTarget | None:
    """Return the first media URL of a reply (``images[].url`` or ``audio.url``), if the route has one."""
    kind = _KIND_BY_ROUTE.get(route)
    if kind is None:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if kind is MediaKind.SPEECH:
        audio = data.get("audio")
        url = audio.get("url") if isinstance(audio, dict) else None
    else:
        images = data.get("images")
        first = images[0] if isinstance(images, list) and images else None
        url = first.get("url") if isinstance(first, dict) else None
    return MediaTarget(url, kind) if isinstance(url, str) and url else None


def judge(target: MediaTarget, fetched: MediaFetch) -> str | None:
    """Return why the media fails the check, or None when it passes."""
    if fetched.error is not None:
        return f"the {target.kind} at {target.url} could not be fetched: {fetched.error}"
    if fetched.status != 200:
        return f"the {target.kind} at {target.url} answered HTTP {fetched.status}"
    if fetched.size == 0:
        return f"the {target.kind} at {target.url} is empty"
    if not target.kind.matches(fetched.head):
        return f"the {target.kind} at {target.url} is not {_EXPECTED[target.kind]} (starts with {fetched.head[:8]!r})"
    return None


_EXPECTED = {MediaKind.IMAGE: "a PNG or JPEG", MediaKind.VIDEO: "an MP4", MediaKind.SPEECH: "a WAV"}
