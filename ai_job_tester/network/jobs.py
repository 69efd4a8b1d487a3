"""Build one test job's request and send it, timing only the round trip.

Everything a request needs (encoded JSON, the multipart encoder over an open file)
is ready before the clock starts; the clock stops at the reply body's last byte.
Multipart bodies stream from disk through requests-toolbelt, never whole in memory.
"""

from __future__ import annotations

import json
import mimetypes
import random
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
from ..domain.variation import Chance, Varied, unvaried, vary
from ..errors import GatewayUnreachable
from .transport import MalformedReply, WireClock

CHUNK_SIZE = 64 * 1024
DEFAULT_CAPTURE_LIMIT = 4 * 1024 * 1024
CONNECT_TIMEOUT_SECONDS = 10.0

# The operating system's randomness: orchestrators see the seeds they are sent, and a
# seeded generator's next seeds could be worked out from enough of them.
_SYSTEM_CHANCE = random.SystemRandom()


@dataclass(frozen=True, slots=True)
class PreparedJob:
    """A request ready to go, and the parameters it carries as the leaderboard wants them."""

    request: httpx.Request
    input_parameters: str  # exactly the fields sent, seed and suffixes included
    timeout: float
    varied: Varied = field(default_factory=lambda: unvaried({}))  # what was made fresh for this job


def job_parameters(job: PlannedJob, chance: Chance | None = None) -> Varied:
    """Return the job's fields: the pipeline's parameters, varied unless ``vary: false``, plus the model field."""
    pipeline = job.request
    configured = {**pipeline.parameters, pipeline.model_field: job.model}
    if not pipeline.vary:
        return unvaried(configured)
    return vary(pipeline.route, configured, chance or _SYSTEM_CHANCE)


def form_value(value: Any) -> str:
    """Render a parameter as a multipart form value (booleans as ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def prepare(job: PlannedJob, gateway: GatewayConfig, files: ExitStack, *, chance: Chance | None = None) -> PreparedJob:
    """Build the request for ``job`` to ``gateway``; files it streams are closed by ``files``.

    ``chance`` is the random source of the job's variation (the system's by default).
    """
    varied = job_parameters(job, chance)
    params = varied.parameters
    pipeline = job.request
    headers = {"Accept": "application/json, text/event-stream", **bearer(gateway)}
    url = f"{gateway.broadcaster_job_endpoint}/{pipeline.route}"
    content: bytes | Iterator[bytes]
    if pipeline.content_type == "application/json":
        content = json.dumps(params, separators=(",", ":")).encode()
        headers["Content-Type"] = "application/json"
    else:
        fields: dict[str, Any] = {key: form_value(value) for key, value in params.items() if value is not None}
        if pipeline.asset is not None:
            fields[pipeline.file_field] = _file_part(pipeline.asset, files)
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
        timeout=pipeline.timeout,
        varied=varied,
    )


def bearer(gateway: GatewayConfig) -> dict[str, str]:
    """The ``Authorization`` header a gateway's jobs carry, when it has a request token."""
    token = gateway.broadcaster_request_token
    return {} if token is None else {"Authorization": f"Bearer {token.get_secret_value()}"}


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
        elapsed = measured(clock, started)
    except httpx.TransportError as exc:
        fault, detail = transport_fault(exc, request, prepared.timeout)
    except httpx.DecodingError as exc:
        fault, detail = TransportFault.MALFORMED, f"the reply is not valid HTTP ({exc})"
    else:
        return Exchange(
            status=reply.status,
            body=bytes(reply.captured),
            round_trip=elapsed,
            webhook_requests=webhook_requests() - hits_before,
            captured_all=reply.complete,
            stream=None if reply.meter is None else reply.meter.stats(),
        )
    return Exchange(
        status=reply.status,
        body=b"",
        round_trip=time.perf_counter() - started,
        webhook_requests=webhook_requests() - hits_before,
        fault=fault,
        fault_detail=detail,
    )


def measured(clock: WireClock, started: float) -> float:
    """The round trip: the transport's stamps when they are sane, else the clock around the call."""
    outer = time.perf_counter() - started
    wire = clock.round_trip()
    return outer if wire is None or not 0 < wire <= outer else wire


def transport_fault(exc: httpx.TransportError, request: httpx.Request, timeout: float) -> tuple[TransportFault, str]:
    """What a measured request's transport error means; a gateway that cannot be reached is the tester's problem.

    Raises ``GatewayUnreachable`` for a refused or timed-out connect: the job never reached anyone.
    """
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        raise GatewayUnreachable(
            f"cannot reach the gateway at {request.url.scheme}://{request.url.netloc.decode()} ({exc}): "
            "is it running, and is broadcasterJobEndpoint right?"
        ) from None
    if isinstance(exc, httpx.TimeoutException):
        return TransportFault.TIMEOUT, f"no complete reply within {timeout:g} s"
    if isinstance(exc, MalformedReply):
        return TransportFault.MALFORMED, f"the reply is not valid HTTP ({exc})"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return TransportFault.DROPPED, f"the connection closed before a complete reply ({exc})"
    raise exc


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
