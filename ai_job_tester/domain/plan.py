"""Plan a cycle: every (orchestrator, capability, model) whose route is configured, and transcoding.

Pure: it takes what discovery found and the config, and returns the jobs in the
order they run plus what was left out and why. Every job has a kind (``JobKind``):
the one place that tells a request/response AI job, a live stream and a transcoding
stream apart is the job's spec, ``PlannedJob.pipeline``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from . import routes
from .discovery import ModelOffer, Offers, Orchestrator, name_problem, orchestrator_problem, shown
from .transcode import Profile, Segment, configuration_header


class JobKind(StrEnum):
    """What a job is, and so how a lane measures it and which leaderboard row it makes."""

    REQUEST = "ai"  # one request, one reply: an AI pipeline
    LIVE = "live"  # an AI video stream, pinned by its ingest URL
    TRANSCODING = "transcoding"  # segments pushed to the gateway's /live route, pinned by the webhook


TRANSCODING_CAPABILITY = "Transcoding"
"""How transcoding jobs are named where AI jobs show their pipeline (tables, JUnit, metrics, filters)."""


@dataclass(frozen=True, slots=True)
class Variant:
    """One prompt a live pipeline is tested with; its parameters go over the pipeline's."""

    id: str
    complexity: str = "default"
    parameters: Mapping[str, Any] = field(default_factory=dict)


DEFAULT_VARIANT = Variant(id="default")


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A configured pipeline as a job needs it: every default resolved, the test file found."""

    name: str
    route: str
    content_type: str
    parameters: Mapping[str, Any]
    model_field: str
    file_field: str
    asset: Path | None  # the file a multipart job sends, None when it sends none
    timeout: float
    capture_response: bool = True
    verify_output: bool = True
    vary: bool = True  # a fresh seed and prompt suffix per job (see ``variation``)
    is_live: bool = False
    variants: tuple[Variant, ...] = ()  # live only; empty means the one default variant

    @property
    def kind(self) -> JobKind:
        return JobKind.LIVE if self.is_live else JobKind.REQUEST


@dataclass(frozen=True, slots=True)
class TranscodeSpec:
    """A transcoding test as a job needs it: the segment, how often to push it, the renditions to ask for."""

    profiles: tuple[Profile, ...]
    segment: Segment
    segments: int
    timeout: float  # per segment: connect, upload, the gateway's whole work, and the reply
    name: str = TRANSCODING_CAPABILITY
    route: str = "live"

    @property
    def kind(self) -> JobKind:
        return JobKind.TRANSCODING

    @property
    def is_live(self) -> bool:
        return False  # a transcoding stream runs in the lanes, like a request

    @property
    def label(self) -> str:
        """The profiles asked for, where an AI job shows its model."""
        return "+".join(p.name for p in self.profiles)

    @property
    def header(self) -> str:
        return configuration_header(self.profiles)


@dataclass(frozen=True, slots=True)
class PlannedJob:
    """One test job: this model of this capability on this orchestrator."""

    orchestrator: Orchestrator
    capability: str
    model: str
    warm: bool
    pipeline: Pipeline | TranscodeSpec
    variant: Variant | None = None  # live video only: the prompt it is tested with

    @property
    def kind(self) -> JobKind:
        return self.pipeline.kind

    @property
    def route(self) -> str:
        return self.pipeline.route

    @property
    def is_live(self) -> bool:
        return self.pipeline.is_live

    @property
    def warmth(self) -> str:
        """``warm`` or ``cold`` for an AI model; a transcoding job has no model to warm."""
        if self.kind is JobKind.TRANSCODING:
            return "-"
        return "warm" if self.warm else "cold"

    @property
    def request(self) -> Pipeline:
        """The AI pipeline of a request or live job (a transcoding job has none)."""
        if not isinstance(self.pipeline, Pipeline):
            raise TypeError(f"a {self.kind} job has no AI pipeline")
        return self.pipeline

    @property
    def label(self) -> str:
        return f"{self.model} [{self.variant.id}]" if self.variant is not None else self.model


NO_LIVE_BLOCK = "live video needs a liveVideo block in the config"
NO_FFMPEG = "live video needs ffmpeg, which is not installed here"


def live_blocker(*, has_block: bool, has_ffmpeg: bool) -> str | None:
    """Why live offers cannot be tested in this run, or None when they can."""
    if not has_block:
        return NO_LIVE_BLOCK
    if not has_ffmpeg:
        return NO_FFMPEG
    return None


@dataclass(frozen=True, slots=True)
class SkippedOffer:
    """A capability an orchestrator offers that this cycle does not test, and why."""

    orchestrator: str
    capability: str
    model: str
    reason: str


@dataclass(frozen=True, slots=True)
class Filters:
    """Operator's limits for an ad-hoc run; an empty tuple means no limit."""

    orchestrators: tuple[str, ...] = ()
    pipelines: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    def admits_orchestrator(self, orch: Orchestrator) -> bool:
        wanted = {value.strip().lower().rstrip("/") for value in self.orchestrators}
        return not wanted or orch.address in wanted or orch.service_uri.lower().rstrip("/") in wanted

    def admits_pipeline(self, capability: str) -> bool:
        wanted = {value.strip().lower() for value in self.pipelines}
        return (
            not wanted
            or capability.lower() in wanted
            or routes.route_of(capability) in {routes.normalise_route(value) for value in self.pipelines}
        )

    def admits_model(self, model: str) -> bool:
        return not self.models or model in self.models


@dataclass(frozen=True, slots=True)
class Plan:
    """The jobs of a cycle in run order, and the offers left out."""

    orchestrators: tuple[Orchestrator, ...]
    jobs: tuple[PlannedJob, ...]
    skipped: tuple[SkippedOffer, ...] = field(default=())

    @property
    def has_nothing_to_test(self) -> bool:
        """No job, although discovery found orchestrators (all skipped, or none offers a usable pipeline)."""
        return not self.jobs and bool(self.orchestrators or self.skipped)


def build_plan(
    orchestrators: Sequence[Orchestrator],
    offers: Offers,
    pipelines: Sequence[Pipeline],
    filters: Filters = Filters(),
    *,
    live_blocked: str | None = NO_LIVE_BLOCK,
    ai: bool = True,
    transcoding: TranscodeSpec | None = None,
) -> Plan:
    """Match offers to configured pipelines by route and apply the operator's filters.

    ``live_blocked`` says why live video cannot be tested (see ``live_blocker``), or is None
    when it can: a live offer then becomes one job per prompt variant. ``ai`` False tests no
    AI offer; ``transcoding`` adds one transcoding job per orchestrator.
    """
    by_route = {pipeline.route: pipeline for pipeline in pipelines}
    jobs: list[PlannedJob] = []
    skipped: list[SkippedOffer] = []
    chosen = []
    for orch in orchestrators:
        if not filters.admits_orchestrator(orch):
            continue
        problem = orchestrator_problem(orch)
        if problem:  # skipped now, never refused by the row model after its jobs ran
            skipped.append(SkippedOffer(shown(orch.address), "-", "-", problem))
            continue
        chosen.append(orch)
    if transcoding is not None and not (
        filters.admits_pipeline(TRANSCODING_CAPABILITY) and filters.admits_model(transcoding.label)
    ):
        transcoding = None  # the operator's --pipeline or --model leaves it out
    for orch in chosen:
        if ai:
            jobs.extend(_ai_jobs(orch, offers, by_route, filters, skipped, live_blocked=live_blocked))
        if transcoding is not None:
            jobs.append(PlannedJob(orch, TRANSCODING_CAPABILITY, transcoding.label, False, transcoding))
    return Plan(orchestrators=tuple(chosen), jobs=tuple(jobs), skipped=tuple(skipped))


def _ai_jobs(
    orch: Orchestrator,
    offers: Offers,
    by_route: Mapping[str, Pipeline],
    filters: Filters,
    skipped: list[SkippedOffer],
    *,
    live_blocked: str | None,
) -> list[PlannedJob]:
    jobs: list[PlannedJob] = []
    orch_offers = offers.get(orch.address, ())
    if not orch_offers:
        skipped.append(SkippedOffer(orch.address, "-", "-", "reported no AI capabilities"))
    for offer in orch_offers:
        if not (filters.admits_pipeline(offer.capability) and filters.admits_model(offer.model)):
            continue
        problem = name_problem("capability", offer.capability) or name_problem("model", offer.model)
        if problem:
            skipped.append(SkippedOffer(orch.address, shown(offer.capability, 80), shown(offer.model, 80), problem))
            continue
        pipeline = by_route.get(routes.route_of(offer.capability))
        reason = _skip_reason(offer, pipeline, live_blocked=live_blocked)
        if reason or pipeline is None:
            skipped.append(SkippedOffer(orch.address, offer.capability, offer.model, reason))
            continue
        variants: Sequence[Variant | None] = [None]
        if pipeline.is_live:
            variants = pipeline.variants or (DEFAULT_VARIANT,)
        jobs.extend(
            PlannedJob(orch, offer.capability, offer.model, offer.warm, pipeline, variant) for variant in variants
        )
    return jobs


def _skip_reason(offer: ModelOffer, pipeline: Pipeline | None, *, live_blocked: str | None) -> str:
    if pipeline is None:
        return "no pipeline with this route in the config"
    is_live_offer = routes.is_live_capability(offer.capability)
    if is_live_offer != pipeline.is_live:
        return "configured as a live pipeline" if pipeline.is_live else "not configured as a live pipeline"
    if is_live_offer and live_blocked is not None:
        return live_blocked
    return ""
