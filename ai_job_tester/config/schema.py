"""The config file's schema: the earlier Go tester's format, unchanged, plus a few new keys. Pure.

Top-level keys are camelCase, per-pipeline keys keep the Go tester's mixed style
(``capture_response``, ``contentType``); new per-pipeline keys are snake_case.
Unknown keys are rejected so that a typo never silently changes a test.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from ..domain import routes
from ..domain.plan import Pipeline, TranscodeSpec, Variant
from ..domain.text import printable
from ..domain.transcode import DEFAULT_PROFILES, MAX_SEGMENT_SECONDS, PRESETS, Profile, Segment

ContentType = Literal["application/json", "multipart/form-data"]

DEFAULT_JOB_TIMEOUT_SECONDS = 120.0

# Sane maxima: a number beyond them is a typo (or 1e300), refused at load rather than
# overflowing at the first job. The README's config reference lists them.
MAX_JOB_TIMEOUT_SECONDS = 3600.0
MAX_CYCLE_SECONDS = 7 * 24 * 3600.0
MAX_CAPTURE_BYTES = 256 * 1024 * 1024
MAX_GATE_ORCHESTRATORS = 100_000
MAX_LIVE_SECONDS = 3600.0
MAX_FPS = 240.0
MAX_BUSY_PASSES = 100
MAX_SEGMENTS = 100
MAX_PROFILES = 8
DEFAULT_SEGMENT_TIMEOUT_SECONDS = 40.0  # webhook ≤ 3 s + discovery ≤ 6 s + 3 attempts × 8 s (contract §2)
# Sane minima: below them a value cannot measure anything (1e-300 came out as "unrouted").
# A job gets 0.1 s, not 1 s: a simulated orchestrator on loopback answers in milliseconds and
# the tests time it out at 0.5 s; under 0.1 s even a local gateway's connect can miss, and the
# job is misreported.
MIN_JOB_TIMEOUT_SECONDS = 0.1
MIN_CYCLE_SECONDS = 1.0
# ffmpeg takes about a second to start and the status is polled every 0.25 s.
MIN_LIVE_SECONDS = 1.0
MIN_FPS = 1.0

MAX_TOKEN_CHARS = 4096
MAX_SECRET_CHARS = 1024
MIN_WEBHOOK_TOKEN_CHARS = 16
MAX_WEBHOOK_TOKEN_CHARS = 256
# PATH_MAX on Linux; a DNS name's length; a URL any server accepts in a request line.
MAX_PATH_CHARS = 4096
MAX_HOST_CHARS = 255
MAX_URL_CHARS = 2048
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_URL_SAFE = re.compile("[A-Za-z0-9._~-]+")
# What a host name or an IP address (IPv6 with a %zone) is spelt with; "" binds every interface.
_HOST = re.compile("[A-Za-z0-9._:%-]*")
# ffmpeg pushes FLV, which RTMP carries (and HTTP, as the simulated media server takes it);
# the output is read by ffmpeg, which also reads RTSP.
PUSH_SCHEMES = ("rtmp", "rtmps", "http", "https")
PLAYBACK_SCHEMES = (*PUSH_SCHEMES, "rtsp", "rtsps")


def _plain_text(value: Any, *, limit: int) -> Any:
    """Refuse what no file system call, socket or ffmpeg argument takes; the messages never echo the value."""
    if isinstance(value, str):
        if len(value) > limit:
            raise ValueError(f"is longer than {limit} characters")
        if _CONTROL.search(value) or _SURROGATE.search(value):
            raise ValueError("contains a control character (NUL, CR, LF, tab…) or a lone surrogate")
    return value


def _host(value: Any) -> Any:
    value = _plain_text(value, limit=MAX_HOST_CHARS)
    if isinstance(value, str) and not _HOST.fullmatch(value):
        raise ValueError("must be a host name or an IP address (letters, digits and . - _ : %)")
    return value


def _url(value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        spelt = [f"{scheme}://" for scheme in schemes]
        raise ValueError(f"must be an absolute {', '.join(spelt[:-1])} or {spelt[-1]} URL with a host")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValueError(f"has an invalid port ({exc})") from None
    return value


def _http_url(value: str) -> str:
    return _url(value, ("http", "https")).rstrip("/")


def _push_url(value: str) -> str:
    return _url(value, PUSH_SCHEMES)


def _playback_url(value: str) -> str:
    return _url(value, PLAYBACK_SCHEMES)


def _optional_token(value: Any) -> Any:
    # The Go tester wrote the literal string "None" for "no token".
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return None
    return value


def _secret_text(value: Any, *, limit: int) -> Any:
    """Strip a secret and refuse what cannot be sent as is; the messages never show the value."""
    if not isinstance(value, str):
        return value  # pydantic names the wrong type, without the value
    value = value.strip()  # a trailing CR from an env file with Windows line endings, a stray space
    if len(value) > limit:
        raise ValueError(f"is longer than {limit} characters (the value is not shown)")
    if _SURROGATE.search(value):
        raise ValueError("is not valid Unicode text (a lone surrogate; the value is not shown)")
    if _CONTROL.search(value):
        raise ValueError("contains a control character (CR, LF, NUL, tab…); the value is not shown")
    return value


def _request_token(value: Any) -> Any:
    value = _secret_text(_optional_token(value), limit=MAX_TOKEN_CHARS)
    if isinstance(value, str):
        if not value.isascii():
            raise ValueError(
                "contains non-ASCII characters, which an HTTP header cannot carry (the value is not shown)"
            )
        if " " in value:
            raise ValueError("contains a space, which a Bearer token cannot carry (the value is not shown)")
    return value


def _metrics_secret(value: Any) -> Any:
    # An HMAC key, encoded UTF-8: any printable text signs correctly.
    value = _secret_text(value, limit=MAX_SECRET_CHARS)
    if value == "":
        raise ValueError("is empty")
    return value


def _webhook_token(value: Any) -> Any:
    value = _optional_token(value)
    if isinstance(value, str):
        value = value.strip()
        if not (MIN_WEBHOOK_TOKEN_CHARS <= len(value) <= MAX_WEBHOOK_TOKEN_CHARS and _URL_SAFE.fullmatch(value)):
            raise ValueError(
                f"must be {MIN_WEBHOOK_TOKEN_CHARS} to {MAX_WEBHOOK_TOKEN_CHARS} characters of A-Z a-z 0-9 . _ ~ - "
                "(e.g. from `openssl rand -hex 16`); the value is not shown"
            )
    return value


def _host_name(value: str) -> str:
    # A bare host: "storage.example.com", "10.0.0.5", "::1". A scheme, port or path here would
    # never match the host of a URL, so the media from there would fail for a typo.
    host = value.strip().lower()
    if not host or len(host) > 253 or any(char in host for char in "/@?#[] \t") or _CONTROL.search(host):
        raise ValueError(f"{value!r} is not a host name: give the host alone, e.g. 'storage.example.com'")
    if host.count(":") == 1:
        raise ValueError(f"{value!r} has a port: give the host alone (any port of it is allowed)")
    return host


HostName = Annotated[str, AfterValidator(_host_name)]


def _bounded(limit: int) -> BeforeValidator:
    return BeforeValidator(lambda value: _plain_text(value, limit=limit))


HttpUrl = Annotated[str, _bounded(MAX_URL_CHARS), AfterValidator(_http_url)]
PushUrl = Annotated[str, _bounded(MAX_URL_CHARS), AfterValidator(_push_url)]
PlaybackUrl = Annotated[str, _bounded(MAX_URL_CHARS), AfterValidator(_playback_url)]
PathText = Annotated[str, _bounded(MAX_PATH_CHARS), Field(min_length=1)]
Host = Annotated[str, BeforeValidator(_host)]
Port = Annotated[int, Field(ge=1, le=65535)]


class _Strict(BaseModel):
    # 1e400 in JSON is infinity to Python: never a usable number of seconds or bytes.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False)


class PromptVariant(_Strict):
    """One prompt a live pipeline is tested with; its parameters go over the pipeline's."""

    id: str = Field(min_length=1)
    complexity: str = "default"
    parameters: dict[str, Any] = Field(default_factory=dict)


LiveSeconds = Annotated[float, Field(ge=MIN_LIVE_SECONDS, le=MAX_LIVE_SECONDS)]


class LiveVideoConfig(_Strict):
    """The ``liveVideo`` block: where live streams are pushed and read, and how they are judged."""

    media_server_url: PushUrl = Field(alias="mediaServerURL")
    playback_url: PlaybackUrl | None = Field(default=None, alias="playbackURL")
    test_duration_seconds: LiveSeconds = Field(default=10.0, alias="testDurationSeconds")
    target_fps: float = Field(default=30.0, ge=MIN_FPS, le=MAX_FPS, alias="targetFPS")
    max_initial_latency_seconds: LiveSeconds = Field(default=10.0, alias="maxInitialLatencySeconds")
    status_timeout_seconds: LiveSeconds = Field(default=30.0, alias="statusTimeoutSeconds")
    output_timeout_seconds: LiveSeconds = Field(default=30.0, alias="outputTimeoutSeconds")
    # Resolved and checked by ``load_config``, like a pipeline's asset.
    source: PathText | None = Field(default=None, alias="testVideoPath")
    busy_passes: int = Field(default=3, ge=1, le=MAX_BUSY_PASSES, alias="busyPasses")
    busy_backoff_seconds: float = Field(default=10.0, ge=0, le=MAX_LIVE_SECONDS, alias="busyBackoffSeconds")
    # The Go tester's later keys: accepted by name so its files keep loading, and not used.
    probe_grace_period_seconds: Any = Field(default=None, alias="probeGracePeriodSeconds", exclude=True)
    orch_mapping: Any = Field(default=None, alias="orchMapping", exclude=True)
    max_probe_attempts: Any = Field(default=None, alias="maxProbeAttempts", exclude=True)

    @property
    def playback_base(self) -> str:
        return (self.playback_url or self.media_server_url).rstrip("/")


def _preset_or_profile(value: Any) -> Any:
    # A preset's name stands for its profile object (contract §5): objects are what is sent, for
    # a gateway drops an unknown preset name silently and would transcode nothing.
    if not isinstance(value, str):
        return value
    preset = PRESETS.get(value)
    if preset is None:
        raise ValueError(f"{value!r} is not a preset name; use one of {', '.join(PRESETS)} or a profile object")
    return {"name": preset.name, "width": preset.width, "height": preset.height, "bitrate": preset.bitrate,
            "fps": preset.fps}  # fmt: skip


class TranscodingProfileConfig(_Strict):
    """One rendition to ask for: a preset's name, or an object with these keys."""

    name: str = Field(min_length=1, max_length=64, pattern="^[A-Za-z0-9_.-]+$")
    width: int = Field(ge=16, le=7680)
    height: int = Field(ge=16, le=4320)
    bitrate: int = Field(ge=10_000, le=100_000_000)  # bits per second
    fps: int = Field(default=0, ge=0, le=int(MAX_FPS))  # 0 keeps the source's rate


def _default_profiles() -> list[TranscodingProfileConfig]:
    return [TranscodingProfileConfig.model_validate(_preset_or_profile(name)) for name in DEFAULT_PROFILES]


class TranscodingConfig(_Strict):
    """The ``transcoding`` block: one stream of ``segments`` pushes per orchestrator."""

    segments: int = Field(default=3, ge=1, le=MAX_SEGMENTS)
    profiles: list[Annotated[TranscodingProfileConfig, BeforeValidator(_preset_or_profile)]] = Field(
        default_factory=_default_profiles,
        min_length=1,
        max_length=MAX_PROFILES,
    )
    segment_path: PathText | None = Field(default=None, alias="segmentPath")
    segment_duration: float | None = Field(default=None, gt=0, le=MAX_SEGMENT_SECONDS, alias="segmentDuration")
    timeout: float = Field(default=DEFAULT_SEGMENT_TIMEOUT_SECONDS, gt=0, le=MAX_JOB_TIMEOUT_SECONDS)

    @field_validator("profiles")
    @classmethod
    def _unique_names(cls, value: list[TranscodingProfileConfig]) -> list[TranscodingProfileConfig]:
        names = [p.name for p in value]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ValueError(f"profile {name!r} is asked for twice; each rendition needs its own name")
        return value

    def resolved_profiles(self) -> tuple[Profile, ...]:
        return tuple(Profile(p.name, p.width, p.height, p.bitrate, p.fps) for p in self.profiles)


class PipelineConfig(_Strict):
    """One pipeline entry: which route to test and what job to send it."""

    name: str = Field(min_length=1)
    uri: str = Field(min_length=1)
    capture_response: bool = True
    content_type: ContentType = Field(alias="contentType")
    parameters: dict[str, Any] = Field(default_factory=dict)
    live: bool = False
    model_field: str | None = Field(default=None, min_length=1)
    asset: PathText | None = None
    file_field: str | None = Field(default=None, min_length=1)
    timeout: float = Field(default=DEFAULT_JOB_TIMEOUT_SECONDS, ge=MIN_JOB_TIMEOUT_SECONDS, le=MAX_JOB_TIMEOUT_SECONDS)
    verify_output: bool = True
    vary: bool = True
    prompt_variants: list[PromptVariant] | None = Field(default=None, alias="promptVariants")

    @property
    def is_live(self) -> bool:
        return self.live or not routes.is_request_route(self.route)

    @property
    def route(self) -> str:
        return routes.normalise_route(self.uri)

    @property
    def resolved_model_field(self) -> str:
        return self.model_field or routes.default_model_field(self.route, self.content_type)

    @property
    def resolved_file_field(self) -> str:
        return self.file_field or routes.default_file_field(self.route)


Token = Annotated[SecretStr | None, BeforeValidator(_request_token)]
Secret = Annotated[SecretStr, BeforeValidator(_metrics_secret)]
WebhookToken = Annotated[SecretStr | None, BeforeValidator(_webhook_token)]


class GatewayConfig(_Strict):
    """One gateway: a lane with its own webhook. The key names are the top-level ones."""

    broadcaster_job_endpoint: HttpUrl = Field(alias="broadcasterJobEndpoint")
    broadcaster_cli_endpoint: HttpUrl = Field(alias="broadcasterCliEndpoint")
    internal_web_server_address: Host = Field(default="0.0.0.0", alias="internalWebServerAddress")
    internal_web_server_port: Port = Field(default=7934, alias="internalWebServerPort")
    broadcaster_request_token: Token = Field(default=None, alias="broadcasterRequestToken")


class Config(_Strict):
    """The whole config file, validated."""

    region: str = Field(min_length=1, max_length=64)
    # "ai" keeps the Go tester's meaning (plus transcoding when a transcoding block is given).
    job_type: Literal["ai", "transcoding"] = Field(default="ai", alias="jobType")
    internal_web_server_port: Port = Field(default=7934, alias="internalWebServerPort")
    internal_web_server_address: Host = Field(default="0.0.0.0", alias="internalWebServerAddress")
    metrics_api_endpoint: HttpUrl = Field(alias="metricsApiEndpoint")
    metrics_secret: Secret = Field(alias="metricsSecret", min_length=1)
    broadcaster_job_endpoint: HttpUrl | None = Field(default=None, alias="broadcasterJobEndpoint")
    broadcaster_cli_endpoint: HttpUrl | None = Field(default=None, alias="broadcasterCliEndpoint")
    broadcaster_request_token: Token = Field(default=None, alias="broadcasterRequestToken")
    webhook_token: WebhookToken = Field(default=None, alias="webhookToken")
    gateways: list[GatewayConfig] | None = Field(default=None, min_length=1)
    max_duration: float | None = Field(default=None, ge=MIN_CYCLE_SECONDS, le=MAX_CYCLE_SECONDS, alias="maxDuration")
    pipelines: list[PipelineConfig] = Field(default_factory=list)  # required for jobType "ai" (see below)
    state_dir: Annotated[Path, _bounded(MAX_PATH_CHARS)] | None = Field(default=None, alias="stateDir")
    verify_tls: bool = Field(default=True, alias="verifyTls")
    capture_limit_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=MAX_CAPTURE_BYTES, alias="captureLimitBytes")
    # Where the output check may download media besides the gateway's own host (its object store).
    media_hosts: list[HostName] = Field(default_factory=list, alias="mediaHosts", max_length=100)
    health_gate_orchestrators: int = Field(default=5, ge=0, le=MAX_GATE_ORCHESTRATORS, alias="healthGateOrchestrators")
    # The leaderboard scores a row by its arrival: one that waited out a long outage would count as
    # today's measurement. Six hours is three default cycles: late enough for a short outage, and
    # still inside the 24 h window the leaderboard averages over.
    max_row_age_seconds: float = Field(default=6 * 3600, ge=60, le=30 * 24 * 3600, alias="maxRowAgeSeconds")
    live_video: LiveVideoConfig | None = Field(default=None, alias="liveVideo")
    transcoding: TranscodingConfig | None = None
    # Accepted so that the Go tester's later files keep loading; not used by this tester.
    logger: dict[str, Any] | None = None
    # Filled in by ``load_config``: pipeline index -> absolute path of its test file.
    asset_paths: dict[int, Path] = Field(default_factory=dict, exclude=True)
    # Filled in by ``load_config`` when transcoding is tested: the segment file, its duration and size.
    transcode_segment: Segment | None = Field(default=None, exclude=True)

    @field_validator("region")
    @classmethod
    def _upper_case_region(cls, value: str) -> str:
        if value != value.upper():
            raise ValueError(f"must be the upper-case region code, e.g. {value.upper()!r}")
        return value

    @model_validator(mode="after")
    def _one_way_to_name_gateways(self) -> Config:
        named = (("broadcasterJobEndpoint", self.broadcaster_job_endpoint),
                 ("broadcasterCliEndpoint", self.broadcaster_cli_endpoint))  # fmt: skip
        top_level = [key for key, value in named if value]
        if self.gateways is None:
            missing = {"broadcasterJobEndpoint", "broadcasterCliEndpoint"} - set(top_level)
            if missing:
                raise ValueError(f"{sorted(missing)[0]}: required key is missing (or list the gateways in gateways)")
            return self
        if top_level:
            raise ValueError(f"{top_level[0]}: give each gateway in gateways, not also at the top level")
        webhooks = [(g.internal_web_server_address, g.internal_web_server_port) for g in self.gateways]
        for index, webhook in enumerate(webhooks):
            if webhook in webhooks[:index]:
                raise ValueError(f"gateways[{index}].internalWebServerPort: {webhook[1]} is already another lane's")
        return self

    @model_validator(mode="after")
    def _pipelines_for_ai(self) -> Config:
        if self.job_type == "ai" and "pipelines" not in self.model_fields_set:
            raise ValueError("pipelines: required key is missing (or set jobType to transcoding)")
        if self.job_type == "ai" and not self.pipelines:
            raise ValueError("pipelines: List should have at least 1 item")
        return self

    @property
    def tests_ai(self) -> bool:
        """AI jobs are tested unless ``jobType`` is ``transcoding``."""
        return self.job_type == "ai"

    @property
    def transcoding_settings(self) -> TranscodingConfig | None:
        """The transcoding block in effect: the file's, every default for jobType transcoding, or None."""
        if self.transcoding is not None:
            return self.transcoding
        return TranscodingConfig() if self.job_type == "transcoding" else None

    def transcode_spec(self) -> TranscodeSpec | None:
        """Transcoding as jobs need it, or None when this config does not test it."""
        settings = self.transcoding_settings
        if settings is None:
            return None
        if self.transcode_segment is None:
            raise ValueError("the transcoding segment was not resolved (load the config with load_config)")
        return TranscodeSpec(
            profiles=settings.resolved_profiles(),
            segment=self.transcode_segment,
            segments=settings.segments,
            timeout=settings.timeout,
        )

    @property
    def webhook_token_value(self) -> str | None:
        """The secret path segment the gateway's webhook requests must carry, or None (see ``webhook.py``)."""
        return self.webhook_token.get_secret_value() if self.webhook_token is not None else None

    @property
    def lanes(self) -> list[GatewayConfig]:
        """The gateways to test through: ``gateways``, or the top-level keys as one lane."""
        if self.gateways is not None:
            return [
                g
                if g.broadcaster_request_token
                else g.model_copy(update={"broadcaster_request_token": self.broadcaster_request_token})
                for g in self.gateways
            ]
        return [
            GatewayConfig.model_validate(
                {
                    "broadcasterJobEndpoint": self.broadcaster_job_endpoint,
                    "broadcasterCliEndpoint": self.broadcaster_cli_endpoint,
                    "internalWebServerAddress": self.internal_web_server_address,
                    "internalWebServerPort": self.internal_web_server_port,
                    "broadcasterRequestToken": self.broadcaster_request_token,
                }
            )
        ]

    def pipeline_specs(self) -> tuple[Pipeline, ...]:
        """The pipelines as jobs need them, every default resolved (see ``domain.plan.Pipeline``)."""
        return tuple(
            Pipeline(
                name=p.name,
                route=p.route,
                content_type=p.content_type,
                parameters=p.parameters,
                model_field=p.resolved_model_field,
                file_field=p.resolved_file_field,
                asset=self.asset_paths.get(index),
                timeout=p.timeout,
                capture_response=p.capture_response,
                verify_output=p.verify_output,
                vary=p.vary,
                is_live=p.is_live,
                variants=tuple(Variant(v.id, v.complexity, v.parameters) for v in p.prompt_variants or ()),
            )
            for index, p in enumerate(self.pipelines)
        )

    @model_validator(mode="after")
    def _unique_routes(self) -> Config:
        seen: dict[str, int] = {}
        for index, pipeline in enumerate(self.pipelines):
            if pipeline.route in seen:
                raise ValueError(
                    f"pipelines[{index}].uri {printable(pipeline.uri, 80)!r} repeats "
                    f"pipelines[{seen[pipeline.route]}]; each route may be configured once"
                )
            seen[pipeline.route] = index
        return self
