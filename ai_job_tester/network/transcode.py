"""Pushing one segment to the gateway's ``/live`` route and reading its renditions, timed on the tester's leg.

The segment streams from disk; the reply is read up to a cap, so memory stays bounded
whatever the gateway sends. Like an AI job, the push has one total deadline (connect,
upload, the gateway's work and the reply together) and is sent exactly once.

Times, all on ``perf_counter`` and, where the transport can, the kernel's own stamps:

- round trip: the request's first byte to the kernel → the reply's last byte from it;
- upload: the request's first byte → the segment's last byte handed to the kernel;
- download: the reply's headers arriving → its last byte.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import httpx

from ..config import GatewayConfig
from ..domain.plan import TranscodeSpec
from ..domain.transcode import SegmentReply
from .jobs import CHUNK_SIZE, CONNECT_TIMEOUT_SECONDS, bearer, measured, transport_fault
from .transport import WireClock

ACCEPT = "multipart/mixed"
"""Compared by the gateway with exact string equality: anything else gets a 200 with an empty body."""


@dataclass(frozen=True, slots=True)
class Push:
    """Where and how one stream's segments go."""

    url: str  # …/live/<manifest ID>
    headers: dict[str, str]
    timeout: float
    capture_limit: int  # the most of one reply kept in memory


def stream_push(gateway: GatewayConfig, spec: TranscodeSpec, manifest: str, *, capture_limit: int) -> Push:
    """The push of every segment of one stream (the manifest ID is fresh per job)."""
    headers = {
        "Accept": ACCEPT,
        "Content-Type": "video/mp2t",
        "Content-Duration": spec.segment.content_duration,
        "Livepeer-Transcode-Configuration": spec.header,
        **bearer(gateway),
    }
    if spec.segment.resolution is not None:
        headers["Content-Resolution"] = spec.segment.resolution
    return Push(f"{gateway.broadcaster_job_endpoint}/live/{manifest}", headers, spec.timeout, capture_limit)


def push_segment(client: httpx.Client, push: Push, spec: TranscodeSpec, seq: int) -> SegmentReply:
    """Send segment ``seq`` once and read the reply; raise ``GatewayUnreachable`` when the gateway cannot be reached."""
    path = spec.segment.path
    sent: list[float] = []
    with path.open("rb") as segment:
        size = path.stat().st_size
        request = httpx.Request(
            "POST",
            f"{push.url}/{seq}.ts",
            content=_chunks(segment, sent),
            headers={**push.headers, "Content-Length": str(size)},
        )
        request.extensions["timeout"] = httpx.Timeout(
            push.timeout, connect=min(CONNECT_TIMEOUT_SECONDS, push.timeout)
        ).as_dict()
        started = time.perf_counter()
        request.extensions["deadline"] = started + push.timeout
        clock = WireClock()
        request.extensions["wire_clock"] = clock
        status: int | None = None
        try:
            response = client.send(request, stream=True)
            headers_at = clock.last_received or time.perf_counter()
            status = response.status_code
            body, complete = _read(response, push.capture_limit, request.extensions["deadline"])
            ended = clock.last_received or time.perf_counter()
            content_type = response.headers.get("content-type", "")
        except httpx.TransportError as exc:
            fault, detail = transport_fault(exc, request, push.timeout)
            return SegmentReply(seq, status, "", b"", time.perf_counter() - started, fault=fault, fault_detail=detail)
    round_trip = measured(clock, started)
    first = clock.first_sent or started
    upload = max(0.0, sent[0] - first) if sent else None
    return SegmentReply(
        seq,
        status,
        content_type,
        body,
        round_trip,
        upload=None if upload is None else min(upload, round_trip),
        download=max(0.0, min(ended - headers_at, round_trip)),
        captured_all=complete,
    )


def _chunks(segment: BinaryIO, sent: list[float]) -> Iterator[bytes]:
    while chunk := segment.read(CHUNK_SIZE):
        yield chunk
    # The transport asks for the next piece only once it handed the last one to the kernel.
    sent.append(time.perf_counter())


def _read(response: httpx.Response, limit: int, deadline: float) -> tuple[bytes, bool]:
    """The reply's first ``limit`` bytes, and whether that was all of it; the rest is drained, never kept."""
    kept = bytearray()
    complete = True
    try:
        for chunk in response.iter_bytes():
            room = limit - len(kept)
            if len(chunk) > room:
                complete = False
            if room > 0:
                kept += chunk[:room]
            if time.perf_counter() > deadline:
                raise httpx.ReadTimeout("the reply did not finish within the segment timeout")
    finally:
        response.close()
    return bytes(kept), complete
