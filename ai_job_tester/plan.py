"""Plan a cycle: every (orchestrator, capability, model) whose route is configured.

Pure: it takes what discovery found and the config, and returns the jobs in the
order they run plus what was left out and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from . import routes
from .config import PipelineConfig, PromptVariant
from .discovery import ModelOffer, Offers, Orchestrator


@dataclass(frozen=True, slots=True)
class PlannedJob:
    """One test job: this model of this capability on this orchestrator."""

    orchestrator: Orchestrator
    capability: str
    model: str
    warm: bool
    pipeline: PipelineConfig
    pipeline_index: int
    variant: PromptVariant | None = None  # live video only: the prompt it is tested with

    @property
    def route(self) -> str:
        return self.pipeline.route

    @property
    def is_live(self) -> bool:
        return self.pipeline.is_live

    @property
    def label(self) -> str:
        return f"{self.model} [{self.variant.id}]" if self.variant is not None else self.model


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


def build_plan(
    orchestrators: Sequence[Orchestrator],
    offers: Offers,
    pipelines: Sequence[PipelineConfig],
    filters: Filters = Filters(),
    *,
    live: bool = False,
) -> Plan:
    """Match offers to configured pipelines by route and apply the operator's filters.

    ``live`` says whether live video can be tested (the config has a ``liveVideo`` block);
    a live offer then becomes one job per prompt variant.
    """
    by_route = {pipeline.route: (index, pipeline) for index, pipeline in enumerate(pipelines)}
    jobs: list[PlannedJob] = []
    skipped: list[SkippedOffer] = []
    chosen = [orch for orch in orchestrators if filters.admits_orchestrator(orch)]
    for orch in chosen:
        orch_offers = offers.get(orch.address, ())
        if not orch_offers:
            skipped.append(SkippedOffer(orch.address, "-", "-", "reported no AI capabilities"))
        for offer in orch_offers:
            if not (filters.admits_pipeline(offer.capability) and filters.admits_model(offer.model)):
                continue
            match = by_route.get(routes.route_of(offer.capability))
            reason = _skip_reason(offer, match[1] if match else None, live=live)
            if reason or match is None:
                skipped.append(SkippedOffer(orch.address, offer.capability, offer.model, reason))
                continue
            index, pipeline = match
            variants: Sequence[PromptVariant | None] = [None]
            if pipeline.is_live:
                variants = pipeline.prompt_variants or [PromptVariant(id="default")]
            jobs.extend(
                PlannedJob(orch, offer.capability, offer.model, offer.warm, pipeline, index, variant)
                for variant in variants
            )
    return Plan(orchestrators=tuple(chosen), jobs=tuple(jobs), skipped=tuple(skipped))


def _skip_reason(offer: ModelOffer, pipeline: PipelineConfig | None, *, live: bool) -> str:
    if pipeline is None:
        return "no pipeline with this route in the config"
    is_live_offer = not routes.is_request_route(routes.route_of(offer.capability))
    if is_live_offer != pipeline.is_live:
        return "configured as a live pipeline" if pipeline.is_live else "not configured as a live pipeline"
    if is_live_offer and not live:
        return "live video needs a liveVideo block in the config"
    if not offer.model:
        return "the gateway reported an empty model name"
    return ""
