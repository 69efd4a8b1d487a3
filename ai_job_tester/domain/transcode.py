"""Transcoding: the pure parts (livepeer-transcoding-contract.md).

The preset table, what the push request carries, judging one segment's reply rendition by
rendition, and summing a stream's segments into the figures a transcoding row holds.

Error codes of transcoding rows (``errors[].error_code``), besides the transport's
``TIMEOUT``, ``CONNECTION_DROPPED`` and ``MALFORMED_REPLY`` and a non-200 status:

=======================  ================================================================
``NO_RENDITIONS``        a 200 with no rendition at all (what the gateway sends when
                         nothing was transcoded)
``MISSING_RENDITIONS``   a 200 with fewer renditions than profiles asked for
``BAD_RENDITION``        a rendition that is empty, not MPEG-TS, of the wrong size or
                         duration (ffprobe), a URL instead of media, or a reply that is not
                         valid multipart or larger than the capture limit
=======================  ================================================================
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import multipart
from .outcome import TransportFault
from .text import gateway_message, printable

NO_RENDITIONS = "NO_RENDITIONS"
MISSING_RENDITIONS = "MISSING_RENDITIONS"
BAD_RENDITION = "BAD_RENDITION"

TS_PACKET = 188
TS_SYNC = 0x47
MAX_SEGMENT_BYTES = 300_000_000  # the gateway's MaxSegSize: 300 s at 8 Mbit/s
MAX_SEGMENT_SECONDS = 300.0  # a longer Content-Duration is refused with 500 "invalid duration"

# How close a rendition's size and duration must be to what was asked: encoders round a
# kept aspect ratio to even pixels, and a segment's container duration carries AAC priming.
SIZE_SLACK_PIXELS = 2
DURATION_SLACK_SECONDS = 0.5
DURATION_SLACK_FRACTION = 0.25

STREAM_REFUSED = "Could not create stream ID"  # the gateway's maxSessions, auth webhook or profile values
UNKNOWN_CODEC = "Unknown input stream codec"  # the gateway refused the segment itself


@dataclass(frozen=True, slots=True)
class Profile:
    """One rendition to ask for: the header's profile object (bitrate in bits per second, fps 0 keeps the source's)."""

    name: str
    width: int
    height: int
    bitrate: int
    fps: int = 0

    def header(self) -> dict[str, Any]:
        document: dict[str, Any] = {"name": self.name, "width": self.width, "height": self.height,
                                    "bitrate": self.bitrate}  # fmt: skip
        if self.fps:
            document["fps"] = self.fps
        return document


def _preset(name: str, width: int, height: int, kbps: int, fps: int) -> tuple[str, Profile]:
    return name, Profile(name, width, height, kbps * 1000, fps)


PRESETS: Mapping[str, Profile] = dict(
    [
        _preset("P720p60fps16x9", 1280, 720, 6000, 60),
        _preset("P720p30fps16x9", 1280, 720, 4000, 30),
        _preset("P720p25fps16x9", 1280, 720, 3500, 25),
        _preset("P720p30fps4x3", 960, 720, 3500, 30),
        _preset("P576p30fps16x9", 1024, 576, 1500, 30),
        _preset("P576p25fps16x9", 1024, 576, 1500, 25),
        _preset("P360p30fps16x9", 640, 360, 1200, 30),
        _preset("P360p25fps16x9", 640, 360, 1000, 25),
        _preset("P360p30fps4x3", 480, 360, 1000, 30),
        _preset("P240p30fps16x9", 426, 240, 600, 30),
        _preset("P240p25fps16x9", 426, 240, 600, 25),
        _preset("P240p30fps4x3", 320, 240, 600, 30),
        _preset("P144p30fps16x9", 256, 144, 400, 30),
        # P144p25fps16x9 is defined in lpms but missing from its lookup: a gateway drops it.
    ]
)
"""The lpms presets a gateway knows by name (contract §5)."""

DEFAULT_PROFILES = ("P144p30fps16x9", "P240p30fps16x9")
"""Two light renditions of the 360p test segment."""


@dataclass(frozen=True, slots=True)
class Segment:
    """The segment file every push sends, with what the headers say about it."""

    path: Path
    duration: float  # seconds
    width: int | None = None
    height: int | None = None

    @property
    def content_duration(self) -> str:
        """``Content-Duration``: integer milliseconds."""
        return str(max(1, round(self.duration * 1000)))

    @property
    def resolution(self) -> str | None:
        """``Content-Resolution``, when the size is known."""
        return f"{self.width}x{self.height}" if self.width and self.height else None


def configuration_header(profiles: Sequence[Profile]) -> str:
    """``Livepeer-Transcode-Configuration``: the profiles only, never an object store or verification."""
    return json.dumps({"profiles": [p.header() for p in profiles]}, separators=(",", ":"))


def manifest_id(random_hex: str) -> str:
    """A fresh stream's manifest ID: no ``/`` (it would cut the path), unique per job."""
    if not re.fullmatch("[0-9a-f]{8,64}", random_hex):
        raise ValueError("a manifest ID is made of lower-case hex")
    return f"aiJobTester_{random_hex}"


def ts_problem(data: bytes) -> str | None:
    """Why ``data`` is not an MPEG-TS stream (whole 188-byte packets, each opening with 0x47), or None."""
    if not data:
        return "is empty"
    if len(data) % TS_PACKET:
        return f"is {len(data)} bytes, not whole {TS_PACKET}-byte MPEG-TS packets"
    if any(data[i] != TS_SYNC for i in range(0, len(data), TS_PACKET)):
        return "is not MPEG-TS (a packet does not start with the 0x47 sync byte)"
    return None


@dataclass(frozen=True, slots=True)
class Probe:
    """What ffprobe read of a video: its first video stream's size, and its duration."""

    width: int | None
    height: int | None
    duration: float | None


def parse_probe(text: str) -> Probe | None:
    """Read ``ffprobe -of json -show_entries stream=width,height,duration:format=duration``; None if unusable."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    streams = document.get("streams") or []
    stream = streams[0] if isinstance(streams, list) and streams and isinstance(streams[0], dict) else {}
    form = document.get("format") if isinstance(document.get("format"), dict) else {}
    width, height = _number(stream.get("width"), int), _number(stream.get("height"), int)
    # The video stream's own duration: the container's carries the audio's priming.
    duration = _number(stream.get("duration"), float) or _number((form or {}).get("duration"), float)
    if width is None and height is None and duration is None:
        return None
    return Probe(width, height, duration)


_FFMPEG_SIZE = re.compile(r"Stream #\S+: Video: .*?, (\d{1,5})x(\d{1,5})\b")
_FFMPEG_FPS = re.compile(r"Stream #\S+: Video: .*?, (\d+(?:\.\d+)?) fps\b")
_FFMPEG_FRAMES = re.compile(r"frame=\s*(\d+)")


def parse_ffmpeg_report(text: str) -> Probe | None:
    """Read what ``ffmpeg -i X -map 0:v:0 -c copy -f null -`` prints, where ffprobe is not installed.

    The size comes from the video stream's line, the duration from the frames copied over its
    frame rate (a piped MPEG-TS has no container duration).
    """
    size = _FFMPEG_SIZE.search(text)
    fps = _FFMPEG_FPS.search(text)
    frames = _FFMPEG_FRAMES.findall(text)
    width = _number(size.group(1), int) if size else None
    height = _number(size.group(2), int) if size else None
    rate = _number(fps.group(1), float) if fps else None
    count = _number(frames[-1], int) if frames else None
    duration = count / rate if count and rate else None
    if width is None and height is None and duration is None:
        return None
    return Probe(width, height, duration)


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number > 0 else None


def probe_problem(probe: Probe, profile: Profile, seconds: float) -> str | None:
    """Why a probed rendition is not what ``profile`` asked for, or None.

    The source's aspect ratio is kept, so the rendition must fit the profile's box and
    fill it in one dimension; its duration must be close to the segment's.
    """
    if probe.width is None or probe.height is None:
        return "has no video stream the prober (ffprobe or ffmpeg) can read"
    fits = probe.width <= profile.width + SIZE_SLACK_PIXELS and probe.height <= profile.height + SIZE_SLACK_PIXELS
    fills = abs(probe.width - profile.width) <= SIZE_SLACK_PIXELS or abs(probe.height - profile.height) <= (
        SIZE_SLACK_PIXELS
    )
    if not (fits and fills):
        return f"is {probe.width}x{probe.height}, not the {profile.width}x{profile.height} asked for"
    slack = max(DURATION_SLACK_SECONDS, DURATION_SLACK_FRACTION * seconds)
    if probe.duration is not None and abs(probe.duration - seconds) > slack:
        return f"lasts {probe.duration:.2f} s, not the segment's {seconds:.2f} s"
    return None


@dataclass(frozen=True, slots=True)
class SegmentReply:
    """What one segment's push got back, as seen on the wire; times in seconds, None where not measured."""

    seq: int
    status: int | None
    content_type: str
    body: bytes  # the captured part of the reply
    round_trip: float
    upload: float | None = None  # request start to the segment's last byte handed to the kernel
    download: float | None = None  # the reply's headers to its last byte
    captured_all: bool = True
    fault: TransportFault | None = None
    fault_detail: str = ""


@dataclass(frozen=True, slots=True)
class SegmentResult:
    """One segment judged: how many renditions were good, and what went wrong with the others."""

    seq: int
    renditions: int  # valid renditions received
    status: int | None = None  # the reply's HTTP status, None when none came
    round_trip: float | None = None  # set only for a segment with at least one valid rendition
    upload: float | None = None
    download: float | None = None
    errors: tuple[tuple[str, str], ...] = ()  # (error code, message)
    refused: str | None = None  # the gateway refused the request itself: nobody transcoded anything


Prober = Callable[[bytes], Probe | None]
"""Reads a rendition's size and duration (ffprobe), or None when it cannot."""


def judge_segment(
    reply: SegmentReply,
    profiles: Sequence[Profile],
    seconds: float,
    probe: Prober | None = None,
    *,
    part_limit: int | None = None,
) -> SegmentResult:
    """Judge one reply rendition by rendition; ``probe`` checks size and duration when ffprobe is there.

    A rendition larger than ``part_limit`` bytes is not probed or counted.
    """
    if reply.fault is not None:
        return SegmentResult(reply.seq, 0, errors=((reply.fault.value, reply.fault_detail),))
    assert reply.status is not None
    if reply.status != 200:
        message = gateway_message(reply.body)
        refused = _refusal(reply.status, message)
        # A 503 "No sessions available" is the orchestrator's only if the stream was routed:
        # that is decided for the whole stream (``transcode_verdict``), from the webhook's count.
        return SegmentResult(reply.seq, 0, reply.status, errors=((str(reply.status), message),), refused=refused)
    if not reply.captured_all:
        return SegmentResult(reply.seq, 0, 200, errors=((BAD_RENDITION, "the reply is larger than the capture limit"),))
    boundary = multipart.boundary_of(reply.content_type)
    if boundary is None:
        if not reply.body:
            return SegmentResult(reply.seq, 0, 200, errors=((NO_RENDITIONS, "a 200 with an empty body"),))
        shown = printable(reply.content_type, 80) or "none"
        problem = f"the reply is not multipart/mixed ({shown})"
        return SegmentResult(reply.seq, 0, 200, errors=((BAD_RENDITION, problem),))
    try:
        parts = multipart.split(reply.body, boundary)
    except multipart.MalformedMultipart as exc:
        return SegmentResult(reply.seq, 0, 200, errors=((BAD_RENDITION, f"the reply is not valid multipart: {exc}"),))
    if not parts:
        return SegmentResult(reply.seq, 0, 200, errors=((NO_RENDITIONS, "a 200 multipart reply with no part"),))
    good, errors = _renditions(parts, profiles, seconds, probe, part_limit)
    if good < len(profiles) and len(parts) < len(profiles):
        missing = len(profiles) - len(parts)
        errors.append((MISSING_RENDITIONS, f"{len(parts)} of {len(profiles)} renditions came back ({missing} missing)"))
    timed = good > 0
    return SegmentResult(
        reply.seq,
        good,
        200,
        round_trip=reply.round_trip if timed else None,
        upload=reply.upload if timed else None,
        download=reply.download if timed else None,
        errors=tuple(errors),
    )


def _refusal(status: int, message: str) -> str | None:
    """Why the gateway refused the push before any orchestrator saw it, or None when it may have."""
    if STREAM_REFUSED.lower() in message.lower():
        return (
            f"the gateway could not create the stream (HTTP {status}: {message}): its -maxSessions limit "
            "(default 10, idle streams count for 60-120 s), its auth webhook, or a profile it cannot parse"
        )
    if status == 404:
        return (
            f"the gateway has no /live route (HTTP 404: {message}): its HTTP ingest is off; start it with "
            "-httpIngest (or a local -httpAddr)"
        )
    if status in (400, 405, 413) or UNKNOWN_CODEC.lower() in message.lower():
        return f"the gateway refused the segment push itself (HTTP {status}: {message}): check the transcoding block"
    return None


def _renditions(
    parts: Sequence[multipart.Part],
    profiles: Sequence[Profile],
    seconds: float,
    probe: Prober | None,
    part_limit: int | None,
) -> tuple[int, list[tuple[str, str]]]:
    by_name = {part.rendition_name: part for part in parts if part.rendition_name}
    good, errors = 0, []
    for position, profile in enumerate(profiles):
        part = by_name.get(profile.name)
        if part is None and not by_name and position < len(parts):
            part = parts[position]  # no names: the gateway writes parts in profile order
        if part is None:
            continue  # counted as missing
        if part_limit is not None and len(part.body) > part_limit:
            problem: str | None = f"is larger than the capture limit ({part_limit} bytes)"
        else:
            problem = _rendition_problem(part, profile, seconds, probe)
        if problem is None:
            good += 1
        else:
            errors.append((BAD_RENDITION, f"rendition {profile.name} {problem}"))
    return good, errors


def _rendition_problem(part: multipart.Part, profile: Profile, seconds: float, probe: Prober | None) -> str | None:
    kind = part.content_type.split(";", 1)[0].strip().lower()
    if kind == "application/vnd+livepeer.uri":
        return "is a URL, not media: the gateway stores renditions in an object store"
    if kind and kind != "video/mp2t":
        return f"has Content-Type {printable(kind, 60)}, not video/mp2t"
    problem = ts_problem(part.body)
    if problem is None and probe is not None:
        probed = probe(part.body)
        problem = "cannot be read by ffprobe or ffmpeg" if probed is None else probe_problem(probed, profile, seconds)
    return problem


@dataclass(frozen=True, slots=True)
class ErrorCount:
    """One kind of error over a stream's segments: its code, the first message, how often."""

    code: str
    message: str
    count: int


@dataclass(frozen=True, slots=True)
class TranscodeStats:
    """A whole stream's figures, as the transcoding row carries them (times in seconds, averages)."""

    manifest_id: str
    profiles: int
    segments_sent: int
    segments_received: int  # valid renditions, over every segment
    seg_duration: float
    round_trip: float  # over segments with a valid rendition; 0 when there was none
    upload: float
    download: float
    transcode: float  # round trip − upload − download, when more than 0
    errors: tuple[ErrorCount, ...] = ()  # in the order they first happened
    segments: tuple[SegmentResult, ...] = field(default=(), compare=False)

    @property
    def success_rate(self) -> float:
        """Renditions received over renditions asked for (the leaderboard's received / profiles / sent)."""
        asked = self.profiles * self.segments_sent
        return min(1.0, self.segments_received / asked) if asked else 0.0

    def payload(self) -> dict[str, Any]:
        return {
            "manifest_id": self.manifest_id,
            "profiles": self.profiles,
            "segments_sent": self.segments_sent,
            "segments_received": self.segments_received,
            "success_rate": self.success_rate,
            "seg_duration": self.seg_duration,
            "round_trip_time": self.round_trip,
            "upload_time": self.upload,
            "download_time": self.download,
            "transcode_time": self.transcode,
            "errors": [{"error_code": e.code, "message": e.message, "count": e.count} for e in self.errors],
        }


def summarise(manifest: str, results: Sequence[SegmentResult], *, profiles: int, seconds: float) -> TranscodeStats:
    """Sum a stream's judged segments into its row's figures."""
    timed = [r for r in results if r.round_trip is not None]
    rtt = _mean([r.round_trip for r in timed])
    upload = _mean([r.upload for r in timed])
    download = _mean([r.download for r in timed])
    counts: Counter[str] = Counter()
    first: dict[str, str] = {}
    for result in results:
        for code, message in result.errors:
            counts[code] += 1
            first.setdefault(code, message)
    return TranscodeStats(
        manifest_id=manifest,
        profiles=profiles,
        segments_sent=len(results),
        segments_received=sum(r.renditions for r in results),
        seg_duration=seconds,
        round_trip=rtt,
        upload=upload,
        download=download,
        transcode=max(0.0, rtt - upload - download),
        # In the order they first happened: after a failure a gateway drops the orchestrator from the
        # stream and answers the next segments 503, so the first error is the telling one.
        errors=tuple(ErrorCount(code, first[code], counts[code]) for code in first),
        segments=tuple(results),
    )


def _mean(values: Sequence[float | None]) -> float:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else 0.0
