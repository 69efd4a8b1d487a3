"""A simulated gateway in tester mode: a CLI port and an HTTP port on loopback.

Like a gateway started with ``-orchWebhookUrl … -webhookRefreshInterval=0
-aiTesterGateway=true``, it asks the webhook on every job and every capabilities
query, and routes only to an orchestrator the webhook listed. With
``tester_mode=False`` it behaves like a mainline gateway instead: it asks the
webhook once and keeps that answer.

Its HTTP port also takes HTTP-push transcoding (``/live/<manifestID>/<seq>.ts``, see
``push.py``). That side follows go-livepeer's webhook pool more closely: a mainline gateway
answers from a list younger than ``webhook_cache_seconds`` (60 s), and a failed webhook
fetch reuses the last good list in either mode.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from requests_toolbelt.multipart.decoder import MultipartDecoder

from . import replies
from ._http import QuietHandler, ServerThread
from .media import LiveRouter
from .push import MAX_SEGMENT_BYTES, PushedSegment, PushIngest, PushReply, SimStream
from .scenario import Fault, ServedJob, SimOrchestrator

CapabilityApi = Literal["ai", "network"]


@dataclass(frozen=True, slots=True)
class HandledJob:
    """A routed job as the gateway saw it: from its request headers to its reply written."""

    orchestrator: str
    route: str
    model: str
    seconds: float
    started: float  # time.perf_counter() when the request arrived


_FILE_ROUTES = {
    "image-to-image": "image",
    "image-to-video": "image",
    "upscale": "image",
    "segment-anything-2": "image",
    "image-to-text": "image",
    "audio-to-text": "audio",
}
_MEDIA_RING = 64


class SimGateway:
    """The simulated gateway; ``webhook_url`` may be set after construction."""

    def __init__(
        self,
        orchestrators: Sequence[SimOrchestrator],
        *,
        webhook_url: str | None = None,
        capability_api: CapabilityApi = "ai",
        tester_mode: bool = True,
        max_sessions: int = 10,
        stream_idle_seconds: float = 60.0,
    ) -> None:
        self.orchestrators = list(orchestrators)
        self.webhook_url = webhook_url
        self.capability_api = capability_api
        self.tester_mode = tester_mode
        self.media: OrderedDict[str, bytes] = OrderedDict()
        self._cached_listing: list[str] | None = None
        self.webhook_cache_seconds = 60.0  # a mainline gateway's WebhookDiscoveryRefreshInterval
        self.max_segment_bytes = MAX_SEGMENT_BYTES
        self._transcode_listing: list[str] | None = None
        self._transcode_listed_at = 0.0
        self._lock = threading.Lock()
        self.jobs_in_flight = 0
        self.on_job: Callable[[], None] | None = None  # runs when a job arrives, e.g. to crash this gateway
        self.webhook_seconds: list[float] = []  # each webhook call, as this gateway saw it
        self.handled: list[HandledJob] = []  # each routed job, from request to reply written
        self.media_seconds: list[float] = []  # each media download served, from request to reply written
        self.first_discovery_at: float | None = None  # perf_counter of the first registeredOrchestrators request
        self._local = threading.local()
        self.live = LiveRouter(self.orchestrators)
        self.media_delay = 0.0  # seconds before a media download answers
        self.on_media: Callable[[], None] | None = None  # runs as a download arrives, e.g. to crash the gateway
        self.one_object: bytes | None = None  # a broken store: every media URL serves these same bytes
        self.ingest = PushIngest(
            self.transcode_listing, max_sessions=max_sessions, stream_idle_seconds=stream_idle_seconds
        )
        self._cli = ServerThread(_CliHandler, self)
        self._http = ServerThread(_JobHandler, self)

    @property
    def cli_url(self) -> str:
        return self._cli.url

    @property
    def http_url(self) -> str:
        return self._http.url

    def start(self) -> None:
        self._cli.start()
        self._http.start()

    def stop(self) -> None:
        self._cli.stop()
        self._http.stop()
        self.ingest.close()

    # --- what the handlers ask -------------------------------------------------

    def listed(self) -> list[SimOrchestrator]:
        """Ask the webhook (or the cached answer, off tester mode) which orchestrators to use."""
        if not self.tester_mode and self._cached_listing is not None:
            uris = self._cached_listing
        else:
            uris = self._ask_webhook()
            self._cached_listing = uris
        by_uri = {orch.service_uri: orch for orch in self.orchestrators}
        return [by_uri[uri] for uri in uris if uri in by_uri]

    def _ask_webhook(self) -> list[str]:
        return [address for address, _ in self._fetch_webhook() or []]

    def _fetch_webhook(self) -> list[tuple[str, Any]] | None:
        """The webhook's (address, score) entries; None when it could not be asked or answered badly."""
        # Like the Go gateway: a plain GET, 3 s timeout, over a kept-alive connection.
        if not self.webhook_url:
            return None
        url = urlsplit(self.webhook_url)
        started = time.perf_counter()
        for attempt in (1, 2):  # a kept-alive connection the webhook closed is reopened once
            conn = self._webhook_connection(url.hostname or "127.0.0.1", url.port or 80, fresh=attempt == 2)
            try:
                conn.request("GET", url.path or "/")
                reply = conn.getresponse()
                data = json.loads(reply.read())
                break
            except (OSError, http.client.HTTPException, ValueError):
                conn.close()
                if attempt == 2:
                    return None
        self.webhook_seconds.append(time.perf_counter() - started)
        if not 200 <= reply.status < 300 or not isinstance(data, list):
            return None
        return [(e["address"], e.get("score")) for e in data if isinstance(e, dict) and e.get("address")]

    def transcode_listing(self) -> list[SimOrchestrator]:
        """The orchestrators a transcoding stream may use, as go-livepeer's webhook pool answers."""
        with self._lock:
            fresh = (
                self._transcode_listing is not None
                and time.monotonic() - self._transcode_listed_at < self.webhook_cache_seconds
            )
        if self.tester_mode or not fresh:
            fetched = self._fetch_webhook()
            if fetched is not None:  # a failed fetch keeps the last good list (go-livepeer PR #4027)
                # A score strictly between 0 and 1 fits neither pool; above 1 the real gateway panics.
                uris = [address for address, score in fetched if score in (None, 0, 1)]
                with self._lock:
                    self._transcode_listing, self._transcode_listed_at = uris, time.monotonic()
        with self._lock:
            uris = list(self._transcode_listing or [])
        by_uri = {orch.service_uri: orch for orch in self.orchestrators}
        return [by_uri[uri] for uri in uris if uri in by_uri]

    @property
    def streams(self) -> dict[str, SimStream]:
        """The HTTP-push streams this gateway holds, by manifest ID."""
        return self.ingest.streams

    @property
    def pushed(self) -> list[PushedSegment]:
        """Each push that got past the request checks to a stream, in order (refused requests are not here)."""
        return self.ingest.pushed

    def _webhook_connection(self, host: str, port: int, *, fresh: bool) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "webhook", None)
        if conn is None or fresh or (conn.host, conn.port) != (host, port):
            conn = http.client.HTTPConnection(host, port, timeout=3)
            self._local.webhook = conn
        return conn

    def capability_name(self, route: str) -> str | None:
        for orch in self.orchestrators:
            for model in orch.models:
                if model.capability.lower().replace(" ", "-") == route:
                    return model.capability
        return None

    @contextmanager
    def in_flight(self) -> Iterator[None]:
        """Count a job while an orchestrator works on it, so tests can wait for that moment."""
        with self._lock:
            self.jobs_in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self.jobs_in_flight -= 1

    def store_media(self, body: dict[str, bytes]) -> None:
        with self._lock:
            self.media.update(body)
            while len(self.media) > _MEDIA_RING:
                self.media.popitem(last=False)


def _owner(handler: QuietHandler) -> SimGateway:
    return handler.server.owner  # type: ignore[attr-defined, no-any-return]


class _CliHandler(QuietHandler):
    def do_GET(self) -> None:  # noqa: N802
        gateway = _owner(self)
        path = urlsplit(self.path).path
        if path == "/registeredOrchestrators":
            if gateway.first_discovery_at is None:
                gateway.first_discovery_at = time.perf_counter()
            self.reply_json(200, [_registered(orch) for orch in gateway.orchestrators])
        elif path == "/getOrchestratorAICapabilities" and gateway.capability_api == "ai":
            self.reply_json(200, {"orchestrators": [_ai_caps(orch) for orch in gateway.listed()]})
        elif path == "/getNetworkCapabilities":
            self.reply_json(200, _network_caps(gateway.listed()))
        else:
            self.reply(404, b"404 page not found\n", "text/plain")


def _is_push(path: str) -> bool:
    return path.startswith("/live/") and not path.startswith("/live/video-to-video/")


class _JobHandler(QuietHandler):
    def do_GET(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if _is_push(path):
            self._not_allowed()
            return
        if path.startswith("/live/video-to-video/") and path.endswith("/status"):
            status = _owner(self).live.status(path.split("/")[3])
            if status is None:
                self.reply(404, b"stream not found\n", "text/plain")
            else:
                self.reply_json(200, status)
            return
        time.sleep(_owner(self).media_delay)
        if _owner(self).on_media is not None:
            _owner(self).on_media()  # type: ignore[misc]
            self.close_connection = True  # a crashed gateway answers nothing
            return
        data = _owner(self).media.get(path)
        if data is not None and _owner(self).one_object is not None:
            data = _owner(self).one_object
        if data is None:
            self.reply(404, b"not found\n", "text/plain")
        else:
            self.reply(200, data, "application/octet-stream")
            _owner(self).media_seconds.append(time.perf_counter() - self.arrival())

    def do_PUT(self) -> None:  # noqa: N802
        if _is_push(urlsplit(self.path).path):
            self._push()
        else:
            self._not_allowed()

    def do_DELETE(self) -> None:  # noqa: N802
        self._not_allowed()

    def do_PATCH(self) -> None:  # noqa: N802
        self._not_allowed()

    def do_HEAD(self) -> None:  # noqa: N802
        self._not_allowed()

    def do_OPTIONS(self) -> None:  # noqa: N802
        self._not_allowed()

    def _not_allowed(self) -> None:
        self.reply(405, b"Method Not Allowed\n", "text/plain; charset=utf-8")

    def _push(self) -> None:
        gateway = _owner(self)
        if gateway.on_job is not None:
            gateway.on_job()
        body = self.read_body(limit=gateway.max_segment_bytes)
        if body is None:
            self.close_connection = True  # the rest of the body is never read
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), value)  # Go's Header.Get: the first one
        with gateway.in_flight():
            reply = gateway.ingest.push(url=self.path, headers=headers, body=body)
        self._write_push(reply)

    def _write_push(self, reply: PushReply) -> None:
        if reply.drop:
            self.drop()
        elif reply.status == 200 and reply.content_type:
            # Go flushes the head, then writes the parts: the reply is chunked, with no Content-Length.
            self.reply_chunked([reply.body], reply.content_type, 0.0)
        else:
            self.reply(reply.status, reply.body, reply.content_type)

    def do_POST(self) -> None:  # noqa: N802
        if _is_push(urlsplit(self.path).path):
            self._push()
            return
        received = self.arrival()  # the service time starts when the request reached this gateway
        gateway = _owner(self)
        route = urlsplit(self.path).path.strip("/")
        body = self.read_body()
        capability = gateway.capability_name(route)
        if capability is None:
            # A route the gateway does not serve fails its route check: 200, empty body.
            self.reply(200, b"", "text/plain")
            return
        try:
            params, files = _parse(self.headers.get("Content-Type", ""), body)
        except ValueError as exc:
            self.reply_error(400, f"failed to parse request: {exc}")
            return
        problem = _validate(route, params, files)
        if problem:
            self.reply_error(400, problem)
            return
        model = str(params.get("model") if "messages" in params else params.get("model_id"))
        target = next((o for o in gateway.listed() if o.offers(capability, model)), None)
        if target is None:
            self.reply_error(503, "Service Unavailable Error")
            return
        with gateway.in_flight():
            self._serve(gateway, target, route, capability, model, params)
        gateway.handled.append(
            HandledJob(target.address.lower(), route, model, time.perf_counter() - received, received)
        )

    def _serve(
        self,
        gateway: SimGateway,
        orch: SimOrchestrator,
        route: str,
        capability: str,
        model: str,
        params: dict[str, Any],
    ) -> None:
        fault = orch.fault_for(capability)
        for hook in (gateway.on_job, orch.on_job):
            if hook is not None:
                hook()
        started = time.perf_counter()
        orch.begin()
        try:
            time.sleep(orch.slow_seconds if fault is Fault.SLOW else orch.latency)
        finally:
            orch.end()
        orch.record(
            ServedJob(
                orch.address.lower(),
                route,
                model,
                time.perf_counter() - started,
                {k: str(v) for k, v in params.items()},
            )
        )
        if fault is Fault.ERROR:
            self.reply_error(orch.error_status, orch.error_message)
        elif fault is Fault.DROP:
            self.drop()
        elif fault is Fault.EMPTY:
            self.reply(200, b"", "text/plain")
        elif fault is Fault.GARBAGE:
            headers = b"".join(b"X-Junk-%d: v\r\n" % n for n in range(150))
            self.wfile.write(b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: 2\r\n\r\n{}")
        elif fault is Fault.HUGE:
            body, content_type = replies.success_body(route, model, params, {})
            self.reply(200, b" " * orch.huge_bytes + body, content_type)
        else:
            media: dict[str, bytes] = {}
            if fault is Fault.REPLAY:  # the cache's answer: another request's output, whatever this one asked
                model, params = orch.replayed(route, model, params)
            body, content_type = replies.success_body(route, model, params, media)
            body = replies.spoil(fault, body, media, elsewhere=gateway.http_url.replace("127.0.0.1", "localhost"))
            gateway.store_media(media)
            if content_type == "text/event-stream":
                events = [event + b"\n\n" for event in body.split(b"\n\n") if event]
                self.reply_chunked(events, content_type, orch.token_seconds)
            else:
                self.reply(200, body, content_type)


def _parse(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    if content_type.startswith("application/json"):
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("the body is not a JSON object")
        return data, {}
    if content_type.startswith("multipart/form-data"):
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        for part in MultipartDecoder(body, content_type).parts:
            disposition = part.headers.get(b"Content-Disposition", b"").decode()
            name = _disposition_value(disposition, "name")
            if "filename=" in disposition:
                files[name] = part.content
            else:
                params[name] = part.text
        return params, files
    raise ValueError(f"unsupported content type {content_type!r}")


def _disposition_value(disposition: str, key: str) -> str:
    for item in disposition.split(";"):
        name, _, value = item.strip().partition("=")
        if name == key:
            return value.strip('"')
    return ""


def _validate(route: str, params: dict[str, Any], files: dict[str, bytes]) -> str | None:
    if route == "llm" and "messages" in params:
        if not all(key in params for key in ("model", "messages", "max_tokens", "stream")):
            return "missing required fields"
        return None
    if "model_id" not in params:
        return "missing model_id"
    field = _FILE_ROUTES.get(route)
    if field is not None:
        data = files.get(field)
        if not data:
            return f"missing {field} file"
        if field == "image" and not data.startswith((b"\x89PNG", b"\xff\xd8\xff")):
            return "image: unsupported image format"
    return None


def _registered(orch: SimOrchestrator) -> dict[str, Any]:
    return {
        "Address": orch.address.lower(),
        "ServiceURI": orch.service_uri,
        "Active": orch.active,
        "Status": "Registered",
        "PricePerPixel": "3/2",
        "LastRewardRound": 3500,
        "RewardCut": 250000,
        "FeeShare": 500000,
        "DelegatedStake": 123456789012345678901234567890,  # larger than 2^64, as on mainnet
        "ActivationRound": 1000,
        "DeactivationRound": 18446744073709551616,
        "LastActiveStakeUpdateRound": 3500,
    }


def _ai_caps(orch: SimOrchestrator) -> dict[str, Any]:
    pipelines: dict[str, list[dict[str, Any]]] = {}
    for model in orch.models:
        status = {"Cold": 0, "Warm": 1} if model.warm else {"Cold": 1, "Warm": 0}
        pipelines.setdefault(model.capability, []).append({"name": model.name, "status": status})
    return {
        "address": orch.address.lower(),
        "pipelines": [{"type": name, "models": models} for name, models in pipelines.items()],
    }


def _network_caps(orchestrators: Sequence[SimOrchestrator]) -> dict[str, Any]:
    ids: dict[str, str] = {}
    entries = []
    for orch in orchestrators:
        per_cap: dict[str, dict[str, Any]] = {}
        for model in orch.models:
            cap_id = ids.setdefault(model.capability, str(27 + len(ids)))
            spec: dict[str, Any] = {"capacity": model.capacity}
            if model.warm:
                spec["warm"] = True  # a cold model has no "warm" key at all
            per_cap.setdefault(cap_id, {"models": {}})["models"][model.name] = spec
        entries.append(
            {
                "address": orch.address,  # checksummed, mixed case
                "orch_uri": orch.service_uri,
                "capabilities": {"constraints": {"PerCapability": per_cap}},
            }
        )
    return {"capabilities_names": {cap_id: name for name, cap_id in ids.items()}, "orchestrators": entries}
