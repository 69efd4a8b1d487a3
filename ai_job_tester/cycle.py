"""One test cycle: discover once, plan, then test through every lane, posting each result.

This is the only module that wires the pieces together; each piece it calls is either
pure (plan, rotation, classify, build a row) or owns one kind of I/O. Each lane runs in
its own thread and tests one job at a time; the scheduler never gives one orchestrator
to two lanes at once. The main thread only waits, so that signals reach it.
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from . import rotation
from .config import Config, LiveVideoConfig
from .courier import Courier
from .discovery import merge_live_offers
from .dispatch import Dispatch
from .errors import GatewayUnreachable, LeaderboardRegionError
from .gateway import GatewayCli
from .interrupts import Interrupted
from .lane import Lane
from .leaderboard import Leaderboard
from .liverun import LiveRun, busy_result, live_result, run_live_job
from .outbox import HELD_JOURNAL, Outbox
from .outcome import TESTER_MODE_HINT, Outcome, Verdict
from .plan import Filters, Plan, PlannedJob, build_plan
from .report import CycleReport, Delivered
from .results import JobResult, not_run
from .schedule import Scheduler
from .state import CycleLock, default_state_dir, prepare_state_dir
from .transport import StdlibTransport
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
    max_duration: float | None = None  # overrides the config's maxDuration


class Observer(Protocol):
    """Told about progress as it happens (from the lanes' threads); the CLI shows it, tests may record it."""

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
    """Run one full cycle and return its report; every webhook is closed whatever happens.

    ``webhook`` is an already bound webhook for the first lane (else each lane binds its
    own from the config) and ``transport`` replaces the network for tests.
    """
    options = options or RunOptions()
    state_dir = prepare_state_dir(options.state_dir or config.state_dir or default_state_dir())
    with ExitStack() as stack:
        if webhook is not None:
            stack.enter_context(webhook)
        stack.enter_context(CycleLock(state_dir))  # before binding: a second cron start must exit 5, not 1
        lanes = []
        for number, gateway in enumerate(config.lanes, 1):
            hook = webhook if number == 1 and webhook is not None else None
            hook = hook or stack.enter_context(
                Webhook.bind(gateway.internal_web_server_address, gateway.internal_web_server_port)
            )
            # The measured requests go through the lean transport (see transport.py).
            lane_transport = transport or StdlibTransport(verify=config.verify_tls)
            client = stack.enter_context(_client(config, lane_transport))
            lanes.append(Lane(number, gateway, hook, client))
        client = stack.enter_context(_client(config, transport))
        outbox = Outbox(state_dir)
        stack.callback(outbox.close)
        held = Outbox(state_dir, HELD_JOURNAL)
        stack.callback(held.close)
        cycle = _Cycle(config, options, observer or SilentObserver(), lanes, client, outbox, held, state_dir)
        return cycle.run()
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


def _client(config: Config, transport: httpx.BaseTransport | None) -> httpx.Client:
    return httpx.Client(transport=transport, verify=config.verify_tls, follow_redirects=False)


class _Cycle:
    def __init__(
        self,
        config: Config,
        options: RunOptions,
        observer: Observer,
        lanes: list[Lane],
        client: httpx.Client,
        outbox: Outbox,
        held: Outbox,
        state_dir: Path,
    ) -> None:
        self.config = config
        self.options = options
        self.observer = observer
        self.lanes = lanes
        self.client = client
        self.outbox = outbox
        self.state_dir = state_dir
        self.courier: Courier | None = None
        if options.post and not options.dry_run:
            board = Leaderboard(client, config.metrics_api_endpoint, config.metrics_secret)
            self.courier = Courier(board, self.outbox)
        self.dispatch = Dispatch(
            self.courier, held, region=config.region, gate_orchestrators=config.health_gate_orchestrators
        )
        self.stopped: str | None = None
        self.interrupted: Interrupted | None = None
        self.results: dict[int, JobResult] = {}
        self.finished_order: list[int] = []
        self.lock = threading.Lock()  # results, dispatch (outbox, courier) and rotation, shared by the lanes
        self.last_tested = rotation.load(state_dir)
        budget = options.max_duration or config.max_duration
        self.deadline = None if budget is None else time.monotonic() + budget  # no job starts after it

    def run(self) -> CycleReport:
        started = time.time()
        earlier = Delivered()
        if self.courier is not None:
            self._check_region(self.courier)
            earlier = self._flush(self.courier)
        plan, everyone = self._discover()
        order = rotation.rotation_order(plan.jobs, self.last_tested)
        self.observer.planned(plan)
        if self.options.dry_run:
            ordered = Plan(plan.orchestrators, tuple(plan.jobs[i] for i in order), plan.skipped)
            return CycleReport(self.config.region, started, time.time(), ordered, (), posting=False)
        scheduler = Scheduler([(i, plan.jobs[i]) for i in order if not plan.jobs[i].is_live], deadline=self.deadline)
        self._run_lanes(scheduler, everyone)
        live_jobs = [(i, plan.jobs[i]) for i in order if plan.jobs[i].is_live]
        if live_jobs and self.stopped is None and self.interrupted is None:
            self._run_live(live_jobs)
        with self.lock:  # a lane abandoned by a signal may still be inside; it will not get further
            results = self._complete(plan)
            held_back = self.dispatch.finish(self.results, conclusive=self.stopped is None and self.interrupted is None)
            rotation.save(self.state_dir, self.last_tested)
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
            lane_failures=tuple(f"lane {lane.number}: {lane.failed}" for lane in self.lanes if lane.failed),
        )

    def _discover(self) -> tuple[Plan, list[str]]:
        """Ask the first lane's gateway once; the other lanes share what it found."""
        first = self.lanes[0]
        gateway = GatewayCli(self.client, first.gateway.broadcaster_cli_endpoint)
        orchestrators = gateway.registered_orchestrators()
        everyone = [orch.service_uri for orch in orchestrators]
        for lane in self.lanes:
            # The capabilities query discovers live through the webhook: it must list everyone.
            lane.idle(everyone)
        offers = gateway.offers()
        live = self._live_enabled()
        if live:  # live selectors, with their idle capacity, come from mainline's network view
            offers = merge_live_offers(offers, gateway.live_offers())
        plan = build_plan(orchestrators, offers, self.config.pipelines, self.options.filters, live=live)
        return plan, everyone

    def _live_enabled(self) -> bool:
        if self.config.live_video is None or not any(p.is_live for p in self.config.pipelines):
            return False
        if shutil.which("ffmpeg") is None:
            log.warning("live video tests are skipped: ffmpeg is not installed")
            return False
        return True

    def _run_live(self, jobs: list[tuple[int, PlannedJob]]) -> None:
        """Live jobs, one at a time after the batch jobs; a busy orchestrator is tried again later."""
        settings = self.config.live_video
        assert settings is not None
        gateway = self.lanes[0].gateway
        cli = GatewayCli(self.client, gateway.broadcaster_cli_endpoint)
        pending: list[tuple[int, PlannedJob, LiveRun | None]] = [(i, job, None) for i, job in jobs]
        try:
            for attempt in range(settings.busy_passes):
                if attempt:
                    time.sleep(settings.busy_backoff_seconds)
                pending = self._live_pass(pending, settings, gateway.broadcaster_job_endpoint, cli)
                if not pending:
                    break
        except Interrupted as exc:
            self.interrupted = exc  # the ffmpeg children are already stopped
            return
        now = int(time.time())
        with self.lock:
            for index, job, last in pending:  # full to the end: reported, never scored
                if index not in self.results:
                    self.results[index] = busy_result(job, last, now)

    def _live_pass(
        self,
        pending: list[tuple[int, PlannedJob, LiveRun | None]],
        settings: LiveVideoConfig,
        endpoint: str,
        cli: GatewayCli,
    ) -> list[tuple[int, PlannedJob, LiveRun | None]]:
        busy = []
        capacity = cli.live_capacity()
        for index, job, last in pending:
            if self._budget_spent():
                return []  # the budget is spent: what is left is deferred
            if capacity.get((job.orchestrator.address, job.model)) == 0:
                busy.append((index, job, last))  # no idle slot right now: do not even push
                continue
            self.observer.job_started(index, job)
            run = run_live_job(job, settings, endpoint, self.client)
            if run.busy:
                busy.append((index, job, run))
                continue
            with self.lock:
                self._record(index, job, live_result(job, run), None)
            self.observer.job_finished(index, self.results[index])
        return busy

    def _budget_spent(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

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
        return result

    def _run_lanes(self, scheduler: Scheduler, everyone: Sequence[str]) -> None:
        threads = [
            threading.Thread(
                target=self._lane_loop, args=(lane, scheduler, everyone), name=f"lane-{lane.number}", daemon=True
            )
            for lane in self.lanes
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.05)  # short waits: a signal must reach this thread promptly
        except Interrupted as exc:
            # No new job starts; jobs under way are abandoned: their lanes record nothing more.
            self.interrupted = exc
            scheduler.close()
        if all(lane.failed for lane in self.lanes) and self.stopped is None:
            self.stopped = self.lanes[0].failed if len(self.lanes) == 1 else "every lane's gateway failed"

    def _lane_loop(self, lane: Lane, scheduler: Scheduler, everyone: Sequence[str]) -> None:
        try:
            self._lane_jobs(lane, scheduler, everyone)
        except Exception as exc:  # a thread's exception would only print a traceback: stop the lane instead
            if self.interrupted is None:  # after a signal the cycle closed this lane's sockets under it
                lane.failed = f"stopped by an unexpected error: {type(exc).__name__}: {exc}"
                log.error("lane %d stops: %s", lane.number, lane.failed, exc_info=log.isEnabledFor(logging.DEBUG))

    def _lane_jobs(self, lane: Lane, scheduler: Scheduler, everyone: Sequence[str]) -> None:
        while self.interrupted is None and (item := scheduler.take()) is not None:
            index, job = item
            lane.point_at(job)
            self.observer.job_started(index, job)
            try:
                result = lane.measure(job, self.config)
            except GatewayUnreachable as exc:
                log.error("lane %d stops: %s", lane.number, exc)
                lane.failed = str(exc)
                scheduler.give_back(index, job)  # it never reached an orchestrator: another lane takes it
                return
            except Exception as exc:
                if self.interrupted is None:
                    # The traceback is for --verbose: operators get one line.
                    log.error("lane %d stops on an unexpected error: %r", lane.number, exc,
                              exc_info=log.isEnabledFor(logging.DEBUG))  # fmt: skip
                    lane.failed = f"stopped by an unexpected error: {type(exc).__name__}: {exc}"
                    scheduler.give_back(index, job)  # no result can be trusted: another lane runs it
                return
            finally:
                lane.idle(everyone)
            with self.lock:
                if self.interrupted is not None:
                    return  # abandoned: a signal arrived while this job ran
                self._record(index, job, result, scheduler)
            scheduler.done(job)
            self.observer.job_finished(index, self.results[index])

    def _record(self, index: int, job: PlannedJob, result: JobResult, scheduler: Scheduler | None) -> None:
        self.results[index] = result
        self.finished_order.append(index)
        self.last_tested[rotation.rotation_key(job)] = time.time()
        self.dispatch.take(self.results, index)
        first = [self.results[i] for i in self.finished_order[:UNROUTED_STOP_AFTER]]
        unrouted = len(first) == UNROUTED_STOP_AFTER and all(r.outcome is Outcome.UNROUTED for r in first)
        if unrouted and self.stopped is None:
            self.stopped = (
                f"the first {UNROUTED_STOP_AFTER} jobs ran without the gateway asking the webhook, so no "
                f"result can be attributed: {TESTER_MODE_HINT}"
            )
            if scheduler is not None:
                scheduler.close()

    def _complete(self, plan: Plan) -> list[JobResult]:
        """Every planned job's result in plan order; jobs that never ran say why."""
        now = int(time.time())
        if self.interrupted is not None:
            why = f"abandoned: {signal.Signals(self.interrupted.signum).name} received"
        elif self.stopped is not None:
            why = f"the cycle stopped: {self.stopped}"
        else:
            why = "the cycle stopped: every lane failed"
        results = []
        for index, job in enumerate(plan.jobs):
            result = self.results.get(index)
            if result is None and self._budget_spent() and self.stopped is None and self.interrupted is None:
                result = JobResult(job=job, verdict=Verdict(Outcome.DEFERRED, None, _DEFERRED), started_at=now)
            results.append(result or not_run(job, at=now, why=why))
        return results


_DEFERRED = "not started: the time budget was spent; rotation runs it first next cycle"
