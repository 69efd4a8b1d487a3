"""One test cycle: discover once, plan, then test through every lane, posting each result.

This module wires the pieces together and keeps the order of a cycle's steps; each
piece it calls is either pure (plan, rotation, classify, build a row) or owns one kind
of I/O. Lanes run in ``lanes.py``, live video in ``live.py``, results are kept by
``record.py``.
"""

from __future__ import annotations

import logging
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..config import Config
from ..domain.delivery import Delivered
from ..domain.discovery import merge_live_offers
from ..domain.outcome import Outcome
from ..domain.plan import NO_FFMPEG, Filters, Plan, PlannedJob, build_plan, live_blocker
from ..domain.rotation import rotation_order
from ..errors import GatewayUnreachable
from ..network.gateway import GatewayCli
from ..network.leaderboard import Leaderboard
from ..network.transport import StdlibTransport
from ..network.webhook import Webhook
from ..output.report import CycleReport
from ..storage import fingerprints, rotation
from ..storage.outbox import HELD_JOURNAL, Outbox
from ..storage.state import CycleLock, default_state_dir, prepare_state_dir
from .courier import Courier
from .dispatch import Dispatch
from .interrupts import Interrupted
from .lane import Lane
from .lanes import run_lanes
from .live import LiveLane, run_live
from .observer import Observer, SilentObserver
from .preflight import check_regions
from .record import Recorder
from .replays import ReplayGuard
from .schedule import Scheduler

log = logging.getLogger("ai_job_tester")

INTERRUPT_DEADLINE_SECONDS = 5.0
"""From SIGINT/SIGTERM to the summary: rows already stored get what is left of it to be posted."""

_SUMMARY_MARGIN_SECONDS = 0.5  # of the deadline, kept for printing the summary and exiting


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How the operator asked this cycle to run."""

    filters: Filters = field(default_factory=Filters)
    dry_run: bool = False
    post: bool = True
    state_dir: Path | None = None  # overrides the config's stateDir
    max_duration: float | None = None  # overrides the config's maxDuration


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
            if hook is not None:
                hook.use_token(config.webhook_token_value)  # bound before the config was known
            hook = hook or stack.enter_context(
                Webhook.bind(
                    gateway.internal_web_server_address,
                    gateway.internal_web_server_port,
                    token=config.webhook_token_value,
                )
            )
            # The measured requests go through the lean transport (see transport.py).
            lane_transport = transport or StdlibTransport(verify=config.verify_tls)
            client = stack.enter_context(_client(config, lane_transport))
            lanes.append(
                Lane(
                    number,
                    gateway,
                    hook,
                    client,
                    capture_limit=config.capture_limit_bytes,
                    media_hosts=config.media_hosts,
                )
            )
        client = stack.enter_context(_client(config, transport))
        # Synced behind the lanes: each lane waits for its row's sync before its next job, the courier before a post.
        outbox = stack.enter_context(Outbox(state_dir, sync_behind=True))
        held = stack.enter_context(Outbox(state_dir, HELD_JOURNAL))
        cycle = _Cycle(config, options, observer or SilentObserver(), lanes, client, outbox, held, state_dir)
        return cycle.run()
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


def _client(config: Config, transport: httpx.BaseTransport | None) -> httpx.Client:
    return httpx.Client(transport=transport, verify=config.verify_tls, follow_redirects=False)


class _Cycle:
    """The steps of one cycle, in order, over pieces already wired."""

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
            self.courier = Courier(board, outbox, max_age=config.max_row_age_seconds)
        gate = config.health_gate_orchestrators
        dispatch = Dispatch(self.courier, held, region=config.region, gate_orchestrators=gate)
        self.recorder = Recorder(dispatch, rotation.load(state_dir))
        budget = options.max_duration or config.max_duration
        self.deadline = None if budget is None else time.monotonic() + budget  # no job starts after it
        self.transcoding = config.transcode_spec()

    def run(self) -> CycleReport:
        started = time.time()
        if self.courier is not None:
            tested = {"ai": self.config.tests_ai, "transcoding": self.transcoding is not None}
            kinds = [kind for kind, posts in tested.items() if posts]
            check_regions(self.courier, self.state_dir, self.config.region, kinds)
            self.courier.start()  # rows earlier runs left go first, while discovery runs
            self.courier.queue_waiting("earlier")
        try:
            return self._run(started)
        finally:
            if self.courier is not None:
                self.courier.close()

    def _run(self, started: float) -> CycleReport:
        plan, everyone = self._discover()
        order = rotation_order(plan.jobs, self.recorder.last_tested)
        self.observer.planned(plan)
        if self.options.dry_run:
            ordered = Plan(plan.orchestrators, tuple(plan.jobs[i] for i in order), plan.skipped)
            return CycleReport(self.config.region, started, time.time(), ordered, (), posting=False)
        recorder = self.recorder
        replays = ReplayGuard(fingerprints.load(self.state_dir))  # after the dry run: it never needs them
        for lane in self.lanes:
            lane.replays = replays
        batch = Scheduler([(i, plan.jobs[i]) for i in order if not plan.jobs[i].is_live], deadline=self.deadline)
        try:
            run_lanes(self.lanes, batch, everyone, recorder, self.observer)
            self._explain_unrouted()
            live_jobs = [(i, plan.jobs[i]) for i in order if plan.jobs[i].is_live]
            if live_jobs and recorder.going:
                self._run_live(live_jobs)
        except Interrupted as exc:  # between two steps: the same as during one
            recorder.interrupted = recorder.interrupted or exc
        with recorder.lock:  # a lane abandoned by a signal may still be running; it records nothing more
            held_back = recorder.dispatch.finish(recorder.results, conclusive=recorder.going)
        self._deliver_the_rest()
        with recorder.lock:
            results = recorder.complete(plan, budget_spent=self._budget_spent())
        rotation.save(self.state_dir, recorder.last_tested)
        fingerprints.save(self.state_dir, replays.memory())
        courier = self.courier
        return CycleReport(
            region=self.config.region,
            started_at=started,
            finished_at=time.time(),
            plan=plan,
            results=tuple(results),
            stopped=recorder.stopped,
            posting=self.courier is not None,
            interrupted=None if recorder.interrupted is None else recorder.interrupted.signum,
            earlier_rows=Delivered() if courier is None else courier.counts["earlier"],
            late_rows=Delivered() if courier is None else courier.counts["late"],
            undelivered=self.outbox.count() if courier is not None else 0,
            retired=0 if courier is None else courier.retired,
            posting_stopped=None if courier is None else courier.stopped,
            held_back=held_back,
            lane_failures=tuple(f"lane {lane.number}: {lane.failed}" for lane in self.lanes if lane.failed),
            replay_tally=replays.tally,
            lanes=len(self.lanes),
        )

    def _discover(self) -> tuple[Plan, list[str]]:
        """Ask the first lane's gateway once; the other lanes share what it found."""
        gateway = GatewayCli(self.client, self.lanes[0].gateway.broadcaster_cli_endpoint)
        orchestrators = gateway.registered_orchestrators()
        everyone = [orch.service_uri for orch in orchestrators]
        for lane in self.lanes:
            # The capabilities query discovers live through the webhook: it must list everyone.
            lane.idle(everyone)
        ai = self.config.tests_ai
        offers = gateway.offers() if ai else {}  # transcoding needs only the registered orchestrators
        blocked = self._live_blocked()
        if ai and blocked is None:  # live selectors, with their idle capacity, come from mainline's network view
            offers = merge_live_offers(offers, gateway.live_offers())
        pipelines = self.config.pipeline_specs() if ai else ()
        plan = build_plan(orchestrators, offers, pipelines, self.options.filters, live_blocked=blocked, ai=ai,
                          transcoding=self.transcoding)  # fmt: skip
        if plan.has_nothing_to_test:
            log.warning(
                "nothing to test: the gateway listed %d orchestrators, and none offers a pipeline this config "
                "tests (or the filters left none); see the skipped offers below",
                len(orchestrators),
            )
        return plan, everyone

    def _explain_unrouted(self) -> None:
        """Unrouted jobs while requests without the token reached the webhook: say which flag is missing."""
        unrouted = any(r.outcome is Outcome.UNROUTED for r in self.recorder.results.values())
        hints = [hint for lane in self.lanes if (hint := lane.webhook.uncounted_hint())]
        if not (unrouted and hints):
            return
        for hint in hints:
            log.error("%s", hint)
        if self.recorder.stopped is not None:
            self.recorder.stopped += f"; {hints[0]}"

    def _live_blocked(self) -> str | None:
        blocked = live_blocker(
            has_block=self.config.live_video is not None, has_ffmpeg=shutil.which("ffmpeg") is not None
        )
        if blocked == NO_FFMPEG and any(p.is_live for p in self.config.pipelines):
            log.warning("live video tests are skipped: ffmpeg is not installed")
        return blocked

    def _run_live(self, jobs: list[tuple[int, PlannedJob]]) -> None:
        """Live jobs go through the first lane whose gateway is still healthy; with none, they are not run."""
        settings = self.config.live_video
        assert settings is not None
        lane = next((lane for lane in self.lanes if lane.failed is None), None)
        if lane is None:
            return
        try:
            run_live(
                jobs,
                LiveLane(
                    settings=settings,
                    job_endpoint=lane.gateway.broadcaster_job_endpoint,
                    cli=GatewayCli(self.client, lane.gateway.broadcaster_cli_endpoint),
                    client=self.client,
                    recorder=self.recorder,
                    observer=self.observer,
                    budget_spent=self._budget_spent,
                ),
            )
        except GatewayUnreachable as exc:
            lane.failed = str(exc)
            log.error("lane %d stops: %s; the live jobs left are not run", lane.number, exc)

    def _budget_spent(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _deliver_the_rest(self) -> None:
        """Wait for the courier's last answers: without limit normally, within the deadline after a signal."""
        courier, recorder = self.courier, self.recorder
        if courier is None:
            return
        try:
            drained = courier.drain(self._interrupt_deadline())
            # This run's leftovers get one more try.
            if drained and recorder.going and courier.stopped is None and courier.queue_waiting("late"):
                courier.drain(self._interrupt_deadline())
        except Interrupted as exc:  # the signal came while the last rows were being posted
            recorder.interrupted = recorder.interrupted or exc
            courier.drain(self._interrupt_deadline())
        late = courier.counts["late"]
        if late.delivered or late.rejected:
            log.info("outbox: delivered %d waiting rows on the closing retry, %d rejected", late.delivered,
                     late.rejected)  # fmt: skip

    def _interrupt_deadline(self) -> float | None:
        interrupted = self.recorder.interrupted
        if interrupted is None:
            return None
        return interrupted.at + INTERRUPT_DEADLINE_SECONDS - _SUMMARY_MARGIN_SECONDS
