"""The cycle as a library call, against the simulated network: stopping honestly when the gateway dies."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ai_job_tester.config import parse_config
from ai_job_tester.cycle import RunOptions, SilentObserver, run_cycle
from ai_job_tester.cycle.lane import Lane
from ai_job_tester.domain.outcome import Outcome
from ai_job_tester.domain.plan import Plan, PlannedJob
from ai_job_tester.domain.results import JobResult
from ai_job_tester.network.webhook import Webhook
from ai_job_tester.sandbox import SimNetwork


class KillGatewayAfterFirstJob(SilentObserver):
    def __init__(self, network: SimNetwork) -> None:
        self.network = network
        self.seen: list[Plan] = []

    def planned(self, plan: Plan) -> None:
        self.seen.append(plan)

    def job_finished(self, index: int, result: JobResult) -> None:
        if index == 0:
            self.network.gateway.stop()


def test_a_gateway_that_dies_mid_cycle_stops_it_and_no_later_job_is_blamed(network: SimNetwork) -> None:
    webhook = Webhook.bind("127.0.0.1", 0)
    config = parse_config(network.tester_config(webhook_port=webhook.port), source=Path("sim"))
    observer = KillGatewayAfterFirstJob(network)

    report = run_cycle(config, RunOptions(), observer, webhook=webhook)

    outcomes = [result.outcome for result in report.results]
    assert outcomes[0] is Outcome.PASSED
    assert outcomes[1:] == [Outcome.NOT_RUN] * 10
    assert report.stopped is not None and "cannot reach the gateway" in report.stopped
    assert len(network.leaderboard.rows) == 1  # only the job that really ran
    totals = report.totals()
    assert (totals.run, totals.not_run, totals.tester_errors) == (1, 10, 10)


class AskWebhookDuringJobs(SilentObserver):
    def __init__(self, url: str) -> None:
        self.url = url
        self.listings: list[tuple[str, list[str]]] = []

    def job_started(self, index: int, job: PlannedJob) -> None:
        listing = httpx.get(self.url).json()
        self.listings.append((job.orchestrator.service_uri, [entry["address"] for entry in listing]))


def test_during_each_job_the_webhook_lists_only_the_orchestrator_under_test(network: SimNetwork) -> None:
    webhook = Webhook.bind("127.0.0.1", 0)
    config = parse_config(network.tester_config(webhook_port=webhook.port), source=Path("sim"))
    observer = AskWebhookDuringJobs(f"http://127.0.0.1:{webhook.port}/orchestrators")
    run_cycle(config, RunOptions(post=False), observer, webhook=webhook)
    assert len(observer.listings) == 11
    assert all(listing == [under_test] for under_test, listing in observer.listings)


def test_an_unexpected_error_in_a_lane_stops_it_with_a_reason_not_a_traceback(
    network: SimNetwork, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(self: Lane, job: PlannedJob) -> JobResult:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Lane, "measure", broken)
    webhook = Webhook.bind("127.0.0.1", 0)
    config = parse_config(network.tester_config(webhook_port=webhook.port), source=Path("sim"))
    report = run_cycle(config, RunOptions(), webhook=webhook)
    assert report.stopped == "stopped by an unexpected error: RuntimeError: a bug"
    assert {r.outcome for r in report.results} == {Outcome.NOT_RUN}
    assert network.leaderboard.rows == []
    assert "Traceback" not in capsys.readouterr().err
