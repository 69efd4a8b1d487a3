"""Simulated orchestrators: what they serve, how long they take, how they fail."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Fault(StrEnum):
    """How a simulated orchestrator misbehaves."""

    NONE = "none"
    ERROR = "error"  # the gateway answers 500, masked as "Internal Server Error"
    DROP = "drop"  # the connection closes with no reply at all
    EMPTY = "empty"  # 200 with an empty body
    SLOW = "slow"  # replies only after ``SimOrchestrator.slow_seconds``
    HUGE = "huge"  # 200 with ``SimOrchestrator.huge_bytes`` of JSON whitespace before a valid body
    MISSING_MEDIA = "missing-media"  # a valid reply whose media URL leads nowhere
    WRONG_MEDIA = "wrong-media"  # a valid reply whose media is an HTML page
    FOREIGN_MEDIA = "foreign-media"  # a valid reply whose media URL is absolute, on another host name
    STREAM_NO_FINISH = "stream-no-finish"  # an LLM stream that stops before its finishing chunk
    STREAM_ERROR = "stream-error"  # an LLM stream that carries an error event
    GARBAGE = "garbage"  # a 200 with 150 headers: a reply http.client refuses to parse
    REPLAY = "replay"  # answers from a cache: whatever the request, the output of the first one it saw


@dataclass(frozen=True, slots=True)
class SimModel:
    capability: str
    name: str
    warm: bool = True
    capacity: int = 1  # idle slots, as the network capabilities report them


@dataclass
class LiveBehaviour:
    """How a simulated orchestrator answers live video."""

    fps: float = 15.0  # the output's frame rate
    start_delay: float = 0.0  # seconds from the push's start to the first output
    output: bool = True  # False: the stream is accepted but no output ever appears
    capped_times: int = 0  # the first this-many pushes are refused as OrchestratorCapped
    error_after: float | None = None  # seconds after the start, the status reports an inference error


class TranscodeFault(StrEnum):
    """How a simulated orchestrator misbehaves when it transcodes a pushed segment."""

    NONE = "none"
    ERROR = "error"  # 422 ``http push error processing segment … err="Transcode"``; the stream drops it
    MISSING_RENDITIONS = "missing-renditions"  # one part fewer than the stream's profiles
    WRONG_RESOLUTION = "wrong-resolution"  # every rendition keeps the source's size
    SLOW = "slow"  # replies only after ``TranscodeBehaviour.slow_seconds``
    DROP = "drop"  # the connection closes with no reply at all
    NO_SESSIONS = "no-sessions"  # listed but refuses sessions: never joins a pool, 503 ``No sessions available``
    ZERO_PARTS = "zero-parts"  # 200 with a multipart content type and no parts


@dataclass
class TranscodeBehaviour:
    """How a simulated orchestrator answers transcoding."""

    fault: TranscodeFault = TranscodeFault.NONE
    latency: float = 0.0  # seconds per segment on top of the real transcode
    slow_seconds: float = 30.0
    error: str = "Transcode"  # TranscodeFault.ERROR: the error the gateway quotes in its 422


@dataclass(frozen=True, slots=True)
class TranscodedSegment:
    """One pushed segment that reached a simulated orchestrator."""

    orchestrator: str  # lower-case address
    manifest_id: str
    seq: int
    profiles: tuple[str, ...]  # the stream's profile names
    seconds: float  # the time the orchestrator itself spent on it
    renditions: int  # parts actually returned (0 for an error or a drop)


@dataclass(frozen=True, slots=True)
class ServedJob:
    """One job that reached a simulated orchestrator."""

    orchestrator: str  # lower-case address
    route: str
    model: str
    seconds: float  # the time the orchestrator itself spent on it
    params: dict[str, str]


@dataclass
class SimOrchestrator:
    """An orchestrator of the simulated network."""

    address: str
    service_uri: str
    models: tuple[SimModel, ...]
    latency: float = 0.0
    fault: Fault = Fault.NONE
    faults: dict[str, Fault] = field(default_factory=dict)  # per capability name
    error_status: int = 500  # Fault.ERROR: the status, and the message the gateway relays with it
    error_message: str = "Internal Server Error"
    slow_seconds: float = 30.0
    huge_bytes: int = 20 * 1024 * 1024
    token_seconds: float = 0.005  # between two streamed LLM chunks
    active: bool = True
    on_job: Callable[[], None] | None = None  # runs when a job arrives, e.g. to crash the gateway
    live: LiveBehaviour | None = None
    transcoding: TranscodeBehaviour | None = field(default_factory=TranscodeBehaviour)  # None: does not transcode
    served: list[ServedJob] = field(default_factory=list)
    # Fault.REPLAY: the one request per route it really answered (model, params); every later
    # request of that route, whatever its model, seed or prompt, gets that request's output.
    cached: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    transcoded: list[TranscodedSegment] = field(default_factory=list)
    busy: int = 0  # jobs it is working on right now
    most_at_once: int = 0  # the most jobs it ever worked on at the same time
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def offers(self, capability: str, model: str) -> bool:
        return any(m.capability == capability and m.name == model for m in self.models)

    def fault_for(self, capability: str) -> Fault:
        return self.faults.get(capability, self.fault)

    def replayed(self, route: str, model: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Fault.REPLAY: the request its cached output was computed from, the first of this route it saw."""
        with self._lock:
            return self.cached.setdefault(route, (model, params))

    def record(self, job: ServedJob) -> None:
        with self._lock:
            self.served.append(job)

    def record_transcoded(self, segment: TranscodedSegment) -> None:
        with self._lock:
            self.transcoded.append(segment)

    def begin(self) -> None:
        with self._lock:
            self.busy += 1
            self.most_at_once = max(self.most_at_once, self.busy)

    def end(self) -> None:
        with self._lock:
            self.busy -= 1
