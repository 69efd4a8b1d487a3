"""Build one test job's request and send it, timing only the round trip.

Everything a request needs (encoded JSON, the multipart encoder over an open file)
is ready before the clock starts; the clock stops at the reply body's last byte.
Multipart bodies stream from disk through requests-toolbelt, never whole in memory.
"""

from __future__ import annotations

import json
import mimetypes
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..config import GatewayConfig
from ..domain.outcome import Exchange, TransportFault
from ..domain.plan import PlannedJob
from ..domain.streaming import StreamMeter
from ..errors import GatewayUnreachable
from .transport import MalformedReply, WireClock

CHUNK_SIZE = 64 * 1024
DEFAULT_CAPTURE_LIMIT = 4 * 1024 * 1024
CONNECT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class PreparedJob:
    """A request ready to go, and the parameters it carries as the leaderboard wants them."""

    request: httpx.Request
    input_parameters: str
    timeout: float


def job_parameters(job: PlannedJob) -> dict[str, Any]:
    """Return the job's fields: the pipeline's parameters plus the model field."""
    return {**job.pipeline.parameters, job.pipeline.model_field: job.model}


def form_value(value: Any) -> str:
    """Render a parameter as a multipart form value (booleans as ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def prepare(job: PlannedJob, gateway: GatewayConfig, files: ExitStack) -> PreparedJob:
    """Build the request for ``job`` to ``gateway``; files it streams are closed by ``files``."""
    params = job_parameters(job)
    headers = {"Accept": "application/json, text/event-stream"}
    if gateway.broadcaster_request_token is not None:
        headers["Authorization"] = f"Bearer {gateway.broadcaster_request_token.get_secret_value()}"
    url = f"{gateway.broadcaster_job_endpoint}/{job.pipeline.route}"
    content: bytes | Iterator[bytes]
    if job.pipeline.content_type == "application/json":
        content = json.dumps(params, separators=(",", ":")).encode()
        headers["Content-Type"] = "application/json"
    else:
        fields: dict[str, Any] = {key: form_value(value) for key, value in params.items() if value is not None}
        if job.pipeline.asset is not None:
            fields[job.pipeline.file_field] = _file_part(job.pipeline.asset, files)
        # Imported here: requests-toolbelt pulls in requests and urllib3 (about 0.2 s), which
        # a run with JSON pipelines only, or a dry run, never needs.
        from requests_toolbelt import MultipartEncoder

        encoder = MultipartEncoder(fields=fields)
        headers["Content-Type"] = encoder.content_type
        headers["Content-Length"] = str(encoder.len)
        content = _chunks(encoder.read)
    request = httpx.Request("POST", url, content=content, headers=headers)
    return PreparedJob(
        request=request,
        input_parameters=json.dumps(params, separators=(",", ":"), sort_keys=True),
        timeout=job.pipeline.timeout,
    )


def _file_part(path: Path, files: ExitStack) -> tuple[str, Any, str]:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return (path.name, files.enter_context(path.open("rb")), mime)


def _chunks(read: Callable[[int], bytes]) -> Iterator[bytes]:
    while chunk := read(CHUNK_SIZE):
        yield chunk


@dataclass(slots=True)
class _Reply:
    """What the reply brought in: its status, the captured body, and an LLM stream's meter."""

    status: int | None = None
    captured: bytearray = field(default_factory=bytearray)
    complete: bool = True
    meter: StreamMeter | None = None


def send(
    client: httpx.Client,
    prepared: PreparedJob,
    *,
    webhook_requests: Callable[[], int],
    capture_limit: int = DEFAULT_CAPTURE_LIMIT,
) -> Exchange:
    """Send the job once (a measurement is never retried) and time request plus full reply."""
    request = prepared.request
    request.extensions["timeout"] = httpx.Timeout(
        prepared.timeout, connect=min(CONNECT_TIMEOUT_SECONDS, prepared.timeout)
    ).as_dict()
    hits_before = webhook_requests()
    reply = _Reply()
    started = time.perf_counter()
    # The timeout is the whole round trip's: the transport gives each blocking read only what is left.
    request.extensions["deadline"] = started + prepared.timeout
    # The transport's stamps (first byte to the kernel, last byte from it) keep the client
    # library's own work out of the round trip; a transport without them leaves this clock.
    clock = WireClock()
    request.extensions["wire_clock"] = clock
    try:
        _read(client, request, reply, clock, started, capture_limit)
        finished = time.perf_counter()  # before copying the body out: that is the tester's time
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise GatewayUnreachable(
            f"cannot reach the gateway at {request.url.scheme}://{request.url.netloc.decode()} ({exc}): "
            "is it running, and is broadcasterJobEndpoint right?"
        ) from None
    except _FAULTS as exc:
        fault, detail = _fault_of(exc, timeout=prepared.timeout)
        return Exchange(
            status=reply.status,
            body=b"",
            round_trip=time.perf_counter() - started,
            webhook_requests=webhook_requests() - hits_before,
            fault=fault,
            fault_detail=detail,
        )
    return Exchange(
        status=reply.status,
        body=bytes(reply.captured),
        round_trip=_round_trip(clock, started, finished),
        webhook_requests=webhook_requests() - hits_before,
        captured_all=reply.complete,
        stream=None if reply.meter is None else reply.meter.stats(),
    )


# What ends a job as the orchestrator's transport fault (a connect failure is the gateway's, raised above).
_FAULTS = (httpx.TimeoutException, httpx.DecodingError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def _fault_of(exc: Exception, *, timeout: float) -> tuple[TransportFault, str]:
    """Name the transport fault an exception from sending or reading stands for, with its one-line detail."""
    if isinstance(exc, httpx.TimeoutException):
        return TransportFault.TIMEOUT, f"no complete reply within {timeout:g} s"
    if isinstance(exc, MalformedReply | httpx.DecodingError):  # MalformedReply before the RemoteProtocolError it is
        return TransportFault.MALFORMED, f"the reply is not valid HTTP ({exc})"
    return TransportFault.DROPPED, f"the connection closed before a complete reply ({exc})"


def _round_trip(clock: WireClock, started: float, finished: float) -> float:
    """The wire's round trip when the transport stamped one that fits inside the outer clock, else the outer one."""
    outer = finished - started
    wire = clock.round_trip()
    return outer if wire is None or not 0 < wire <= outer else wire


def _read(
    client: httpx.Client, request: httpx.Request, reply: _Reply, clock: WireClock, started: float, capture_limit: int
) -> None:
    """Read the reply as it arrives (a chunk size would hold an LLM's tokens back), keeping its first bytes."""
    deadline: float = request.extensions["deadline"]
    response = client.send(request, stream=True)
    try:
        reply.status = response.status_code
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            reply.meter = StreamMeter(clock.first_sent or started)  # an LLM stream: note when tokens arrive
        for chunk in response.iter_bytes():
            # When the bytes reached the socket (the kernel's stamp), not when the interpreter got to them.
            now = clock.last_received or time.perf_counter()
            if reply.meter is not None:
                reply.meter.feed(chunk, now)
            room = capture_limit - len(reply.captured)
            if room > 0:
                reply.captured += chunk[:room]
            if len(chunk) > room:
                reply.complete = False
            if now > deadline:
                raise httpx.ReadTimeout("the reply did not finish within the job timeout")
    finally:
        response.close()
