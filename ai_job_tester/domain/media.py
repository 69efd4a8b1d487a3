"""Judging the media a reply points at: it must exist, be non-empty and be of the right kind. Pure.

``network.media.fetch`` does the download, off the round-trip clock, only from hosts
``host_problem`` allows. Messages describe what came back (its kind and size), never
quote its bytes: they go into a public row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from .text import loads_object, printable

HEAD_BYTES = 512
"""How much of the media is kept to judge and describe it (the kind needs 16 bytes; text needs a few more)."""

KIND_BYTES = 16  # the most any kind's signature needs


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
    nsfw: bool = False  # the reply flagged it: a safety filter's stand-in, the same for many requests


@dataclass(frozen=True, slots=True)
class MediaFetch:
    """What downloading the media gave: status, first bytes, size, fingerprint, time; or why it failed.

    ``digest`` is the SHA-256 of the whole body (of its first ``cap`` bytes when larger), or
    None when the download broke off before its end: then there is nothing to compare.
    """

    seconds: float
    status: int | None = None
    head: bytes = b""
    size: int = 0  # bytes read (at most the cap)
    complete: bool = False  # the body was read to its end (not stopped at the cap or after a wrong head)
    error: str | None = None  # why the download stopped early, if it did
    digest: str | None = None
    refused: str | None = None  # why it was not fetched at all (a host or scheme not allowed)
    unlisted_host: bool = False  # refused for its host alone: the config's to fix, not the orchestrator's


MEDIA_HOST_NOT_ALLOWED = "MEDIA_HOST_NOT_ALLOWED"
"""A rejected job's code: its media are on a host the config does not list, so its output went unchecked."""


def allowed_hosts(gateway_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The hosts media may come from: the gateway's own, and those the config names (``mediaHosts``)."""
    return frozenset(host.lower().strip("[]") for host in (gateway_host, *extra) if host)


def host_problem(scheme: str, host: str, allowed: frozenset[str]) -> str | None:
    """Why a media URL (as the client parsed it) may not be fetched, or None when it may."""
    if scheme not in ("http", "https"):
        return f"its scheme {printable(scheme, 20)!r} is not http or https"
    if not is_allowed(host, allowed):
        return (
            f"its host {printable(host, 80)!r} is neither the gateway's nor in mediaHosts "
            "(add it there if the gateway's object store lives there)"
        )
    return None


def is_allowed(host: str, allowed: frozenset[str]) -> bool:
    """Whether media may be fetched from ``host``: the gateway's own, or one ``mediaHosts`` names."""
    return host.lower().strip("[]") in allowed


def media_target(route: str, body: bytes) -> MediaTarget | None:
    """Return the first media URL of a reply (``images[].url`` or ``audio.url``), if the route has one."""
    kind = _KIND_BY_ROUTE.get(route)
    if kind is None:
        return None
    data = loads_object(body)
    if data is None:
        return None
    if kind is MediaKind.SPEECH:
        audio = data.get("audio")
        url = audio.get("url") if isinstance(audio, dict) else None
    else:
        images = data.get("images")
        first = images[0] if isinstance(images, list) and images else None
        url = first.get("url") if isinstance(first, dict) else None
        nsfw = isinstance(first, dict) and first.get("nsfw") is True
        return MediaTarget(url, kind, nsfw=nsfw) if isinstance(url, str) and url else None
    return MediaTarget(url, kind) if isinstance(url, str) and url else None


def judge(target: MediaTarget, fetched: MediaFetch) -> str | None:
    """Return why the media fails the check, or None when it passes.

    Only the first bytes decide: a download that broke off after them leaves the media
    unfingerprinted (``digest`` None), not failed, for the rest of the transfer is between
    the tester and the gateway's store, not the orchestrator's doing.
    """
    where = f"the {target.kind} at {printable(target.url, 160)}"
    if fetched.refused is not None:
        return f"{where} was not fetched: {fetched.refused}"
    if fetched.status is None:
        return f"{where} could not be fetched: {fetched.error}"
    if fetched.status != 200:
        return f"{where} answered HTTP {fetched.status}"
    if fetched.size == 0:
        return f"{where} is empty"
    if not target.kind.matches(fetched.head[:KIND_BYTES]):
        broke_off = f"; the download broke off: {fetched.error}" if fetched.error else ""
        what = describe(fetched.head, fetched.size, complete=fetched.complete)
        return f"{where} is not {_EXPECTED[target.kind]}: it is {what}{broke_off}"
    return None


_EXPECTED = {MediaKind.IMAGE: "a PNG or JPEG", MediaKind.VIDEO: "an MP4", MediaKind.SPEECH: "a WAV"}

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "gzip data"),
    (b"OggS", "an Ogg stream"),
    (b"ID3", "an MP3 file"),
    (b"\x1a\x45\xdf\xa3", "a Matroska/WebM video"),
)


def describe(head: bytes, size: int, *, complete: bool = True) -> str:
    """Say what the media looks like (kind and size) without quoting any of it."""
    return f"{_looks_like(head)}, {'' if complete else 'more than '}{_size(size)}"


def _looks_like(head: bytes) -> str:
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    if head[:4] == b"RIFF":
        return "a WAV file" if head[8:12] == b"WAVE" else ("a WebP image" if head[8:12] == b"WEBP" else "RIFF data")
    if head[4:8] == b"ftyp":
        return "an MP4 or QuickTime file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not merely a character cut at the end of the head
            return "unknown binary"
        text = head[: exc.start].decode("utf-8")
    if any(ord(char) < 32 and char not in "\t\r\n" for char in text):
        return "unknown binary"
    start = text.lstrip().lower()
    if start.startswith(("<!doctype html", "<html", "<head", "<body")):
        return "HTML text"
    if start.startswith("<?xml") or start.startswith("<svg"):
        return "XML text"
    if start.startswith(("{", "[")):
        return "JSON text"
    return "plain text" if start else "blank text"


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"
