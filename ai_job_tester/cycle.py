"""One test cycle: discover, plan, then one job at a time through the webhook, posting each result.

This is the only module that wires the pieces together; each piece it calls is
either pure (plan, classify, build a row) or owns one kind of I/O.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from . import rows
from .config import Config
from .errors import GatewayUnreachable
from .gateway import GatewayCli
from .jobs import prepare, send
from .leaderboard import Leaderboard
from .outcome import Outcome, classify
from .plan import Filters, Plan, PlannedJob, build_plan
from .report import CycleReport
from .results import JobResult, build_row, not_run
from .webhook import Webhook


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How the operator asked this cycle to run."""

    filters: Filters = field(default_factory=Filters)
    dry_run: bool = False
    post: bool = True


class Observer(Protocol):
    """Told about progress as it happens; the CLI shows it, tests may record it."""

    def planned(self, plan: Plan) -> None: ...
    def job_started(self, index: int, job: PlannedJob) -> None: ...
    def job_finished(self, index: int, result: JobResult) -> None: ...


class SilentObserver:
    def planned(self, plan: Plan) -> None:
        pass

    def job_started(self, index: int, job: PlannedJob) -> None:
        pass

    def job_finished(self, index: int, result: JobResult) -> None:
        pass


def run_cycle(
    config: Config,
    options: RunOptions = RunOptions(),
    observer: Observer | None = None,
    *,
    webhook: Webhook | None = None,
    transport: httpx.BaseTransport | None = None,
) -> CycleReport:
    """Run one full cycle and return its report; the webhook is closed whatever happens.

    ``webhook`` is an already bound webhook (else one is bound from the config) and
    ``transport`` replaces the network for tests.
    """
    observer = observer or SilentObserver()
    started = time.time()
    hook = webhook or Webhook.bind(config.internal_web_server_address, config.internal_web_server_port)
    with hook, httpx.Client(transport=transport, follow_redirects=False) as client:
        gateway = GatewayCli(client, config.broadcaster_cli_endpoint)
        orchestrators = gateway.registered_orchestrators()
        everyone = [orch.service_uri for orch in orchestrators]
        # The capabilities query discovers live through the webhook: it must list everyone.
        hook.show(everyone)
        plan = build_plan(orchestrators, gateway.offers(), config.pipelines, options.filters)
        observer.planned(plan)
        if options.dry_run:
            return CycleReport(config.region, started, time.time(), plan, (), posting=False)
        leaderboard = Leaderboard(client, config.metrics_api_endpoint, config.metrics_secret) if options.post else None
        results, stopped = _run_jobs(plan, config, client, hook, leaderboard, observer)
        hook.show(everyone)
    return CycleReport(config.region, started, time.time(), plan, tuple(results), stopped, options.post)


def _run_jobs(
    plan: Plan,
    config: Config,
    client: httpx.Client,
    hook: Webhook,
    leaderboard: Leaderboard | None,
    observer: Observer,
) -> tuple[list[JobResult], str | None]:
    results: list[JobResult] = []
    stopped: str | None = None
    for index, job in enumerate(plan.jobs):
        if stopped is not None:
            results.append(not_run(job, at=int(time.time()), why="the cycle stopped: " + stopped))
            continue
        hook.show([job.orchestrator.service_uri])  # from now on the gateway can only pick this one
        observer.job_started(index, job)
        try:
            result = _run_job(job, config, client, hook)
        except GatewayUnreachable as exc:
            stopped = str(exc)
            result = not_run(job, at=int(time.time()), why=stopped)
        if leaderboard is not None and result.outcome.postable:
            result = result.delivered(leaderboard.post(build_row(result, config.region)))
        results.append(result)
        observer.job_finished(index, result)
    return results, stopped


def _run_job(job: PlannedJob, config: Config, client: httpx.Client, hook: Webhook) -> JobResult:
    """Send the job once while the webhook lists only its orchestrator, and classify the reply."""
    with ExitStack() as files:
        prepared = prepare(job, config, files)
        started_at = int(time.time())
        exchange = send(client, prepared, webhook_requests=lambda: hook.requests)
    verdict = classify(job.route, exchange)
    return JobResult(
        job=job,
        verdict=verdict,
        started_at=started_at,
        round_trip=exchange.round_trip,
        status=exchange.status,
        input_parameters=prepared.input_parameters,
        response_payload=rows.response_payload(
            exchange.body, capture=job.pipeline.capture_response, passed=verdict.outcome is Outcome.PASSED
        ),
    )
