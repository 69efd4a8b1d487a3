"""Plan a cycle: every (orchestrator, capability, model) whose route is configured.

Pure: it takes what discovery found and the config, and returns the jobs in the
order they run plus what was left out and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from . import routes
from .config import PipelineConfig
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

    @property
    def route(self) -> str:
        return self.pipeline.route


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
) -> Plan:
    """Match offers to configured pipelines by route and apply the operator's filters."""
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
            reason = _skip_reason(offer, match[1] if match else None)
            if reason or match is None:
                skipped.append(SkippedOffer(orch.address, offer.capability, offer.model, reason))
                continue
            index, pipeline = match
            jobs.append(
                PlannedJob(
                    orchestrator=orch,
                    capability=offer.capability,
                    model=offer.model,
                    warm=offer.warm,
                    pipeline=pipeline,
                    pipeline_index=index,
                )
            )
    return Plan(orchestrators=tuple(chosen), jobs=tuple(jobs), skipped=tuple(skipped))


def _skip_reason(offer: ModelOffer, pipeline: PipelineConfig | None) -> str:
    if not routes.is_request_route(routes.route_of(offer.capability)):
        return "live video is a stream, not a request/response job"
    if pipeline is None:
        return "no pipeline with this route in the config"
    if not pipeline.is_request:
        return "configured as a live pipeline"
    if not offer.model:
        return "the gateway reported an empty model name"
    return ""
