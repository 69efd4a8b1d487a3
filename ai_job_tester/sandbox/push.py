"""The simulated gateway's HTTP push ingest (livepeer-transcoding-contract.md §1–§2, §6).

``POST /live/<manifestID>/<seq>.ts``: the first segment of a manifest ID creates a stream
(profiles fixed, ``maxSessions`` checked, the webhook asked once and the pool sized and
filled from what it lists and what transcodes); later segments continue that stream whatever
their header says. A stream of one orchestrator asks the webhook again on each later segment,
as the real one's background refresh does, so an orchestrator listed later joins it; one that
fails a segment is dropped from the stream for good. A stream idle longer than
``stream_idle_seconds`` is forgotten. Nothing is sent until every rendition is ready.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import posixpath
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .profiles import HEADER, HeaderError, Profile, ProfileError, parse_header, resolve
from .scenario import SimOrchestrator, TranscodeBehaviour, TranscodedSegment, TranscodeFault
from .transcoder import TranscodeError, Transcoder, multipart

MAX_SEGMENT_BYTES = 300_000_000  # MaxSegSize: 300 s at 8 Mbit/s
MAX_DURATION_MS = 300_000
DEFAULT_DURATION_MS = 2000
REFRESH_WAIT = 5.0  # a refresh asks the webhook with a 3 s timeout
SWAP_FLOOR = 1.5  # seconds: a session is kept while round trip / max(1.5 s, duration) <= 1
_INTEGER = re.compile(r"[+-]?\d+")

Listing = Callable[[], list[SimOrchestrator]]

SHARED_TRANSCODER = Transcoder()
"""One cache for every simulated gateway of the process: tests push the same clip again and again."""


@dataclass(frozen=True, slots=True)
class PushReply:
    """What the gateway answers one push with; ``drop`` closes the connection instead."""

    status: int
    body: bytes = b""
    content_type: str | None = None  # None: no Content-Type at all, as for an empty 200
    drop: bool = False


@dataclass(frozen=True, slots=True)
class PushedSegment:
    """One push that reached a stream, as the gateway answered it."""

    manifest_id: str
    seq: int
    status: int  # 0: the connection was dropped
    orchestrator: str | None  # lower-case address of the orchestrator that got it, if any
    seconds: float


@dataclass
class SimStream:
    """One HTTP-push stream the gateway holds."""

    manifest_id: str
    profiles: tuple[Profile, ...]
    container: str
    size: int  # how many orchestrators the webhook listed at the start: fixed for the stream's life
    pool: list[SimOrchestrator]
    suspended: set[str] = field(default_factory=set)  # lower-case addresses that failed a segment
    segments: int = 0
    refreshes: int = 0
    last_used: float = field(default_factory=time.monotonic)
    in_flight: int = 0
    working: dict[str, int] = field(default_factory=dict)  # address -> segments it is on now
    refreshing: bool = False


def _text(status: int, message: str) -> PushReply:
    return PushReply(status, (message + "\n").encode(), "text/plain; charset=utf-8")  # Go's http.Error


def _failed(status: int, url: str, manifest: str, error: str) -> PushReply:
    return _text(status, f"http push error processing segment url={url} manifestID={manifest} err={json.dumps(error)}")


def transcodes(orch: SimOrchestrator) -> bool:
    """Whether discovery would give this orchestrator a transcoding session."""
    return orch.transcoding is not None and orch.transcoding.fault is not TranscodeFault.NO_SESSIONS


class PushIngest:
    """The streams of one simulated gateway; ``listing`` asks its webhook (or its cache)."""

    def __init__(
        self,
        listing: Listing,
        *,
        max_sessions: int = 10,
        stream_idle_seconds: float = 60.0,
        transcoder: Transcoder | None = None,
    ) -> None:
        self.listing = listing
        self.max_sessions = max_sessions
        self.stream_idle_seconds = stream_idle_seconds
        self.transcoder = transcoder or SHARED_TRANSCODER
        self.streams: dict[str, SimStream] = {}
        self.pushed: list[PushedSegment] = []
        self._lock = threading.Lock()
        self._creating = threading.Lock()  # first segments of one manifest wait for one stream
        # Long-lived refresh workers keep their webhook connections alive between refreshes.
        self._refreshers = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="sim-refresh")

    def close(self) -> None:
        """Stop the refresh workers (a refresh under way finishes on its own)."""
        self._refreshers.shutdown(wait=False, cancel_futures=True)

    def push(self, *, url: str, headers: Mapping[str, str], body: bytes | None) -> PushReply:
        """Answer one push; ``headers`` has lower-case names, ``body`` is None when it was too large."""
        started = time.perf_counter()
        try:
            config = parse_header(headers.get(HEADER.lower()))
        except HeaderError as exc:
            return _text(400, f"failed to parse transcode config header: {exc}")
        if body is None:
            return _text(500, "Error reading http request body: input bigger than max buffer size")
        target = _target(url)
        if isinstance(target, PushReply):
            return target
        manifest, seq, container = target
        stream = self._stream(manifest, container, lambda: resolve(config))
        if stream is None:
            return _text(500, f"Could not create stream ID: url={url}")
        orch: SimOrchestrator | None = None
        try:
            reply, orch = self._segment(stream, seq, body, headers, url)
        finally:
            with self._lock:
                stream.in_flight -= 1
                stream.last_used = time.monotonic()
        address = orch.address.lower() if orch is not None else None
        with self._lock:
            self.pushed.append(PushedSegment(manifest, seq, reply.status, address, time.perf_counter() - started))
        return reply

    # --- streams -----------------------------------------------------------------

    def _stream(self, manifest: str, container: str, profiles: Callable[[], tuple[Profile, ...]]) -> SimStream | None:
        stream = self._held(manifest)
        if stream is not None:
            return stream
        with self._creating:
            stream = self._held(manifest)
            if stream is not None:
                return stream
            with self._lock:
                if len(self.streams) >= self.max_sessions:
                    return None  # idle streams still count until they are forgotten
            try:
                chosen = profiles()
            except ProfileError:
                return None
            listed = self.listing()
            stream = SimStream(manifest, chosen, container, len(listed), [o for o in listed if transcodes(o)])
            stream.in_flight = 1
            with self._lock:
                self.streams[manifest] = stream
            return stream

    def _held(self, manifest: str) -> SimStream | None:
        with self._lock:
            now = time.monotonic()
            for name, held in list(self.streams.items()):
                if held.in_flight == 0 and now - held.last_used > self.stream_idle_seconds:
                    del self.streams[name]
            stream = self.streams.get(manifest)
            if stream is not None:
                stream.in_flight += 1
            return stream

    def _select(self, stream: SimStream) -> tuple[SimOrchestrator | None, concurrent.futures.Future[None] | None]:
        with self._lock:
            later = stream.segments > 0
            stream.segments += 1
            orch = stream.pool[0] if stream.pool else None
            if orch is not None:
                key = orch.address.lower()
                stream.working[key] = stream.working.get(key, 0) + 1
            idle = sum(1 for o in stream.pool if not stream.working.get(o.address.lower()))
            refresh = later and not stream.refreshing and idle < math.ceil(stream.size / 2)
            stream.refreshing = stream.refreshing or refresh
        if not refresh:
            return orch, None
        try:
            return orch, self._refreshers.submit(self._refresh, stream)
        except RuntimeError:  # the gateway is stopping
            stream.refreshing = False
            return orch, None

    def _refresh(self, stream: SimStream) -> None:
        try:
            listed = self.listing()
        finally:
            with self._lock:
                stream.refreshing = False
        with self._lock:
            stream.refreshes += 1
            present = {o.address.lower() for o in stream.pool} | stream.suspended
            for orch in listed[: stream.size]:
                if transcodes(orch) and orch.address.lower() not in present:
                    stream.pool.append(orch)
                    present.add(orch.address.lower())

    # --- one segment -------------------------------------------------------------

    def _segment(
        self, stream: SimStream, seq: int, body: bytes, headers: Mapping[str, str], url: str
    ) -> tuple[PushReply, SimOrchestrator | None]:
        duration_ms = _duration(headers.get("content-duration"))
        if not 0 <= duration_ms <= MAX_DURATION_MS:
            return _failed(500, url, stream.manifest_id, "invalid duration"), None
        if not stream.profiles:
            return PushReply(200), None  # zero renditions asked: nothing is transcoded
        orch, refresh = self._select(stream)
        try:
            if orch is None:
                return _text(503, "No sessions available"), None
            reply = self._transcode(stream, orch, seq, body, duration_ms / 1000, url)
        finally:
            if orch is not None:
                with self._lock:
                    stream.working[orch.address.lower()] -= 1
            if refresh is not None:
                # The real refresh runs in the background; waiting for it here (it overlaps the
                # transcode) makes its effect on the next segment certain for tests.
                concurrent.futures.wait([refresh], timeout=REFRESH_WAIT)
        if reply.status == 200 and reply.content_type and headers.get("accept") != "multipart/mixed":
            return PushReply(200), orch  # exact string equality: anything else gets an empty 200
        return reply, orch

    def _transcode(
        self, stream: SimStream, orch: SimOrchestrator, seq: int, body: bytes, duration: float, url: str
    ) -> PushReply:
        behaviour = orch.transcoding or TranscodeBehaviour()
        fault = behaviour.fault
        if orch.on_job is not None:
            orch.on_job()
        started = time.perf_counter()
        orch.begin()
        parts: list[bytes] = []
        error: str | None = None
        try:
            time.sleep(behaviour.slow_seconds if fault is TranscodeFault.SLOW else behaviour.latency)
            parts, error = self._renditions(fault, body, stream)
        finally:
            orch.end()
        seconds = time.perf_counter() - started
        names = tuple(p.name for p in stream.profiles)
        address = orch.address.lower()
        orch.record_transcoded(TranscodedSegment(address, stream.manifest_id, seq, names, seconds, len(parts)))
        if fault is TranscodeFault.ERROR:
            self._suspend(stream, orch)  # a failed attempt removes the orchestrator from the stream
            return _failed(422, url, stream.manifest_id, behaviour.error)
        if fault is TranscodeFault.DROP:
            return PushReply(0, drop=True)
        if error is not None:
            return _failed(422, url, stream.manifest_id, error)
        if seconds / max(SWAP_FLOOR, duration) > 1:
            self._demote(stream, orch)
        body_out, content_type = multipart(list(zip(names, parts, strict=False)), seq, container=stream.container)
        return PushReply(200, body_out, content_type)

    def _renditions(self, fault: TranscodeFault, body: bytes, stream: SimStream) -> tuple[list[bytes], str | None]:
        if fault in (TranscodeFault.ERROR, TranscodeFault.DROP, TranscodeFault.ZERO_PARTS):
            return [], None
        if fault is TranscodeFault.WRONG_RESOLUTION:
            return [body for _ in stream.profiles], None  # the source, as a bypassed segment comes back
        profiles = stream.profiles[:-1] if fault is TranscodeFault.MISSING_RENDITIONS else stream.profiles
        try:
            return self.transcoder.renditions(body, profiles, container=stream.container), None
        except TranscodeError as exc:
            return [], str(exc)

    def _suspend(self, stream: SimStream, orch: SimOrchestrator) -> None:
        with self._lock:
            stream.suspended.add(orch.address.lower())
            stream.pool = [o for o in stream.pool if o is not orch]

    def _demote(self, stream: SimStream, orch: SimOrchestrator) -> None:
        # Too slow for its segment: the selector prefers another session next time, if it has one.
        with self._lock:
            if orch in stream.pool and len(stream.pool) > 1:
                stream.pool.remove(orch)
                stream.pool.append(orch)


def _target(url: str) -> tuple[str, int, str] | PushReply:
    path = urlsplit(url).path
    rest = path[len("/live/") :]
    name = posixpath.basename(rest)
    stem, extension = posixpath.splitext(name)
    if extension not in (".ts", ".mp4"):
        return _text(400, f"ignoring file extension: {extension}")
    manifest, slash, _ = rest.partition("/")
    if not manifest or not slash:
        return _text(400, "Bad URL")
    seq = int(stem) if _INTEGER.fullmatch(stem) else 0
    return manifest, seq, extension[1:]


def _duration(value: str | None) -> int:
    # strconv.Atoi: an optional sign and digits; anything else falls back to 2 s.
    if value is None or not _INTEGER.fullmatch(value) or abs(int(value)) >= 2**63:
        return DEFAULT_DURATION_MS
    return int(value)
