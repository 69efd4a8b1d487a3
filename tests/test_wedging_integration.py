"""Nothing wedges: a fault in a lane, in storing or posting a row, or in the display ends the run in time.

Each case runs the real cycle against simulated gateways (two and four lanes) with one
fault injected, in a thread: a run that hangs fails the test instead of the whole suite.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ai_job_tester.config import parse_config
from ai_job_tester.cycle import RunOptions, SilentObserver, run_cycle
from ai_job_tester.cycle.lane import Lane
from ai_job_tester.domain.outcome import Outcome
from ai_job_tester.domain.plan import PlannedJob
from ai_job_tester.domain.results import JobResult
from ai_job_tester.errors import StateDirError
from ai_job_tester.network.leaderboard import Leaderboard
from ai_job_tester.output.report import CycleReport
from ai_job_tester.sandbox import SimModel, SimNetwork, SimOrchestrator
from ai_job_tester.storage.outbox import Outbox

from .conftest import free_port

T2I = [{"name": "Text to image", "uri": "text-to-image", "contentType": "application/json", "verify_output": False,
        "parameters": {"prompt": "a bear"}, "timeout": 5}]  # fmt: skip
RUN_TIMEOUT = 30.0


def fleet(count: int) -> list[SimOrchestrator]:
    # Two models each: a lane that died holding an orchestrator would leave another lane waiting for it.
    models = (SimModel("Text to image", "m"), SimModel("Text to image", "n"))
    return [
        SimOrchestrator(f"0x{n + 1:040x}", f"https://o{n + 1}.sim:8935", models, latency=0.02) for n in range(count)
    ]


@pytest.fixture(params=[2, 4], ids=["2 lanes", "4 lanes"])
def lanes(request: pytest.FixtureRequest, start_network: Callable[..., SimNetwork]) -> Iterator[SimNetwork]:
    yield start_network(fleet(6), gateways=request.param)


def run_in_time(network: SimNetwork, tmp_path: Path, observer: Any = None) -> CycleReport:
    raw = network.tester_config(webhook_ports=[free_port() for _ in network.gateways], pipelines=T2I)
    config = parse_config(raw, source=Path("sim"))
    done: list[CycleReport] = []
    failed: list[BaseException] = []

    def target() -> None:
        try:
            done.append(run_cycle(config, RunOptions(state_dir=tmp_path / "state"), observer or SilentObserver()))
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(RUN_TIMEOUT)
    assert not thread.is_alive(), f"the cycle was still running after {RUN_TIMEOUT} s"
    if failed:
        raise failed[0]
    lock_free = (tmp_path / "state" / "lock").exists()
    assert lock_free  # the lock file is there; that the lock is free shows in the next run taking it
    return done[0]


def test_a_full_disk_under_the_outbox_stops_every_lane_and_the_run_ends(
    lanes: SimNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: Outbox, row: object) -> object:
        raise StateDirError(f"cannot use outbox.jsonl ({errno.errorcode[errno.ENOSPC]})")

    monkeypatch.setattr(Outbox, "put", full)
    report = run_in_time(lanes, tmp_path)
    assert report.stopped == "every lane's gateway failed"
    assert all("ENOSPC" in failure for failure in report.lane_failures)
    assert lanes.leaderboard.rows == []
    monkeypatch.undo()
    assert run_in_time(lanes, tmp_path).totals().passed == 12  # the lock was released


def test_a_lane_whose_store_fails_once_releases_its_orchestrator_for_the_other_lanes(
    lanes: SimNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put = Outbox.put
    failures = [StateDirError("cannot use outbox.jsonl (ENOSPC)")]

    def full_once(self: Outbox, row: object) -> object:
        if failures:
            raise failures.pop()
        return put(self, row)  # type: ignore[arg-type]

    monkeypatch.setattr(Outbox, "put", full_once)
    report = run_in_time(lanes, tmp_path)
    assert len(report.lane_failures) == 1 and report.stopped is None
    assert report.totals().passed == 12 and len(lanes.leaderboard.rows) == 12


def test_one_lane_that_breaks_gives_its_job_to_the_others(
    lanes: SimNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    measure = Lane.measure

    def broken_on_lane_one(self: Lane, job: PlannedJob) -> JobResult:
        if self.number == 1:
            raise RuntimeError("a bug in lane 1")
        return measure(self, job)

    monkeypatch.setattr(Lane, "measure", broken_on_lane_one)
    report = run_in_time(lanes, tmp_path)
    assert report.stopped is None and report.lane_failures == ("lane 1: stopped by an unexpected error: "
                                                               "RuntimeError: a bug in lane 1",)  # fmt: skip
    assert report.totals().passed == 12 and len(lanes.leaderboard.rows) == 12


class BrokenDisplay(SilentObserver):
    def job_finished(self, index: int, result: JobResult) -> None:
        raise ValueError("closing tag '[/y]' does not match any open tag")


def test_a_display_that_fails_is_logged_and_every_job_still_runs(lanes: SimNetwork, tmp_path: Path) -> None:
    report = run_in_time(lanes, tmp_path, BrokenDisplay())
    assert report.lane_failures == () and report.totals().passed == 12
    assert len(lanes.leaderboard.rows) == 12


def test_a_post_that_raises_keeps_its_row_and_the_run_ends(
    lanes: SimNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Leaderboard, row: object) -> object:
        raise RuntimeError("a bug in posting")

    monkeypatch.setattr(Leaderboard, "post", broken)
    report = run_in_time(lanes, tmp_path)
    assert report.totals().passed == 12 and report.undelivered == 12
    assert all(r.delivery is not None and not r.delivery.delivered for r in report.results)
    assert {r.outcome for r in report.results} == {Outcome.PASSED}


def test_a_delivery_listener_that_raises_cannot_leave_the_courier_busy_for_ever(
    lanes: SimNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ai_job_tester.cycle.record import Recorder

    def broken(self: Recorder, index: int, delivery: object) -> None:
        raise RuntimeError("a bug in recording a delivery")

    monkeypatch.setattr(Recorder, "_delivered", broken)
    report = run_in_time(lanes, tmp_path)
    assert report.totals().passed == 12
    assert len(lanes.leaderboard.rows) == 12  # every row still posted, and the run ended
