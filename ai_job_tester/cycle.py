"""One test cycle: discover, plan, then one job at a time through the webhook, posting each result.

This is the only module that wires the pieces together; each piece it calls is
either pure (plan, classify, build a row) or owns one kind of I/O.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from . import media, rows
from .config import Config
from .courier import Courier
from .dispatch import Dispatch
from .errors import GatewayUnreachable, LeaderboardRegionError
from .gateway import GatewayCli, accepts_connections
from .interrupts import Interrupted
from .jobs import prepare, send
from .leaderboard import Leaderboard
from .outbox import HELD_JOURNAL, Outbox
from .outcome import TESTER_MODE_HINT, Outcome, TransportFault, Verdict, classify
from .plan import Filters, Plan, PlannedJob, build_plan
from .report import CycleReport, Delivered
from .results import JobResult, not_run
from .state import CycleLock, default_state_dir, prepare_state_dir
from .webhook import Webhook

log = logging.getLogger("ai_job_tester")

UNROUTED_STOP_AFTER = 3
"""A cycle whose first this-many jobs were all unrouted stops: the gateway is not in tester mode."""

INTERRUPTED_FLUSH_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How the operator asked this cycle to run."""

    filters: Filters = field(default_factory=Filters)
    dry_run: bool = False
    post: bool = True
    state_dir: Path | None = None  # overrides the config's stateDir


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
    options: RunOptions | None = None,
    observer: Observer | None = None,
    *,
    webhook: Webhook | None = None,
    transport: httpx.BaseTransport | None = None,
) -> CycleReport:
    """Run one full cycle and return its report; the webhook is closed whatever happens.

    ``webhook`` is an already bound webhook (else one is bound from the config) and
    ``transport`` replaces the network for tests.
    """
    options = options or RunOptions()
    state_dir = prepare_state_dir(options.state_dir or config.state_dir or default_state_dir())
    with ExitStack() as stack:
        if webhook is not None:
            stack.enter_context(webhook)
        stack.enter_context(CycleLock(state_dir))  # before binding: a second cron start must exit 5, not 1
        hook = webhook or stack.enter_context(
            Webhook.bind(config.internal_web_server_address, config.internal_web_server_port)
        )
        client = stack.enter_context(
            httpx.Client(transport=transport, verify=config.verify_tls, follow_redirects=False)
        )
        outbox = Outbox(state_dir)
        stack.callback(outbox.close)
        held = Outbox(state_dir, HELD_JOURNAL)
        stack.callback(held.close)
        return _Cycle(config, options, observer or SilentObserver(), hook, client, outbox, held).run()
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


class _Cycle:
    def __init__(
        self,
        config: Config,
        options: RunOptions,
        observer: Observer,
        hook: Webhook,
        client: httpx.Client,
        outbox: Outbox,
        held: Outbox,
    ) -> None:
        self.config = config
        self.options = options
        self.observer = observer
        self.hook = hook
        self.client = client
        self.outbox = outbox
        self.courier: Courier | None = None
        if options.post and not options.dry_run:
            board = Leaderboard(client, config.metrics_api_endpoint, config.metrics_secret)
            self.courier = Courier(board, self.outbox)
        self.dispatch = Dispatch(
            self.courier, held, region=config.region, gate_orchestrators=config.health_gate_orchestrators
        )
        self.stopped: str | None = None
        self.interrupted: Interrupted | None = None

    def run(self) -> CycleReport:
        started = time.time()
        earlier = Delivered()
        if self.courier is not None:
            self._check_region(self.courier)
            earlier = self._flush(self.courier)
        gateway = GatewayCli(self.client, self.config.broadcaster_cli_endpoint)
        orchestrators = gateway.registered_orchestrators()
        everyone = [orch.service_uri for orch in orchestrators]
        # The capabilities query discovers live through the webhook: it must list everyone.
        self.hook.show(everyone)
        plan = build_plan(orchestrators, gateway.offers(), self.config.pipelines, self.options.filters)
        self.observer.planned(plan)
        if self.options.dry_run:
            return CycleReport(self.config.region, started, time.time(), plan, (), posting=False)
        results = self._run_jobs(plan)
        self.hook.show(everyone)
        held_back = self.dispatch.finish(results, conclusive=self.stopped is None and self.interrupted is None)
        late = self._flush(self.courier) if self.courier is not None else Delivered()
        return CycleReport(
            region=self.config.region,
            started_at=started,
            finished_at=time.time(),
            plan=plan,
            results=tuple(results),
            stopped=self.stopped,
            posting=self.courier is not None,
            interrupted=None if self.interrupted is None else self.interrupted.signum,
            earlier_rows=earlier,
            late_rows=late,
            undelivered=self.outbox.count() if self.courier is not None else 0,
            posting_stopped=None if self.courier is None else self.courier.stopped,
            held_back=held_back,
        )

    def _check_region(self, courier: Courier) -> None:
        regions = courier.leaderboard.ai_regions()
        if regions is None:
            log.warning("could not read the leaderboard's regions; going on without checking %r", self.config.region)
        elif self.config.region not in regions:
            raise LeaderboardRegionError(
                f"region {self.config.region!r} is not an AI region on the leaderboard, which would drop every "
                f"row; its AI regions are: {', '.join(regions) or 'none'}"
            )

    def _flush(self, courier: Courier) -> Delivered:
        deadline = time.monotonic() + INTERRUPTED_FLUSH_SECONDS if self.interrupted else None
        result = courier.flush(deadline=deadline)
        if result.delivered or result.rejected:
            log.info("outbox: delivered %d waiting rows, %d rejected", result.delivered, result.rejected)
        return Delivered(result.delivered, result.rejected)

    def _run_jobs(self, plan: Plan) -> list[JobResult]:
        results: list[JobResult] = []
        try:
            for index, job in enumerate(plan.jobs):
                if self.stopped is not None:
                    break
                results.append(self._one_job(job, index))
                self.dispatch.take(results)
                self.observer.job_finished(index, results[-1])
                self._check_routing(results)
        except Interrupted as exc:
            self.interrupted = exc
        why = (
            f"abandoned: {signal.Signals(self.interrupted.signum).name} received"
            if self.interrupted is not None
            else f"the cycle stopped: {self.stopped}"
        )
        now = int(time.time())
        results.extend(not_run(job, at=now, why=why) for job in plan.jobs[len(results) :])
        return results

    def _one_job(self, job: PlannedJob, index: int) -> JobResult:
        self.hook.show([job.orchestrator.service_uri])  # from now on the gateway can only pick this one
        self.observer.job_started(index, job)
        try:
            result = self._measure(job)
            if result.verdict.error_code == TransportFault.DROPPED.value:
                self._check_gateway_alive()
        except GatewayUnreachable as exc:
            self.stopped = str(exc)
            return not_run(job, at=int(time.time()), why=self.stopped)
        return result

    def _check_gateway_alive(self) -> None:
        # A dropped connection is the orchestrator's failure only if the gateway is still there:
        # a gateway that died mid-job drops it too, and that is no orchestrator's fault.
        endpoint = self.config.broadcaster_job_endpoint
        if not accepts_connections(endpoint):
            raise GatewayUnreachable(
                f"the gateway at {endpoint} went away during a job and no longer accepts connections"
            )

    def _measure(self, job: PlannedJob) -> JobResult:
        """Send the job once while the webhook lists only its orchestrator, and classify the reply."""
        with ExitStack() as files:
            prepared = prepare(job, self.config, files)
            started_at = int(time.time())
            exchange = send(
                self.client,
                prepared,
                webhook_requests=lambda: self.hook.requests,
                capture_limit=self.config.capture_limit_bytes,
            )
        verdict = classify(job.route, exchange)
        check_seconds = None
        if verdict.outcome is Outcome.PASSED and job.pipeline.verify_output:
            verdict, check_seconds = self._check_output(job, exchange.body, verdict)
        stream = exchange.stream
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
            output_check_seconds=check_seconds,
            time_to_first_token=None if stream is None else stream.first_token_at,
            tokens_per_second=None if stream is None else stream.tokens_per_second,
        )

    def _check_output(self, job: PlannedJob, body: bytes, verdict: Verdict) -> tuple[Verdict, float | None]:
        """Fetch the media the reply points at, right away: a gateway keeps it only briefly."""
        target = media.media_target(job.route, body)
        if target is None:
            return verdict, None
        fetched = media.fetch(self.client, self.config.broadcaster_job_endpoint, target)
        problem = media.judge(target, fetched)
        if problem is not None:
            return Verdict(Outcome.FAILED, "BAD_OUTPUT", problem), fetched.seconds
        return verdict, fetched.seconds

    def _check_routing(self, results: Sequence[JobResult]) -> None:
        if len(results) == UNROUTED_STOP_AFTER and all(r.outcome is Outcome.UNROUTED for r in results):
            self.stopped = (
                f"the first {UNROUTED_STOP_AFTER} jobs ran without the gateway asking the webhook, so no result "
                f"can be attributed: {TESTER_MODE_HINT}"
            )
