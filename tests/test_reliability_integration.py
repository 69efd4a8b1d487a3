"""Fault injection against the simulated network: no row lost, none misattributed, each fault loud."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from ai_job_tester.cli import app
from ai_job_tester.domain.rows import LeaderboardRow
from ai_job_tester.sandbox import Fault, SimLeaderboard, SimNetwork
from ai_job_tester.storage.outbox import Outbox

from .conftest import wait_until

runner = CliRunner()
ORCH_ONE = "https://orch-one.sim:8935"


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def waiting(state_dir: Path) -> list[LeaderboardRow]:
    outbox = Outbox(state_dir)
    try:
        return [parcel.row for parcel in outbox.pending()]
    finally:
        outbox.close()


def rejected_files(state_dir: Path) -> list[Path]:
    return sorted((state_dir / "rejected").glob("*.json"))


def test_leaderboard_down_then_back_delivers_every_row_once(
    network: SimNetwork, sim_config: Callable[..., Path], state_home: Path
) -> None:
    config = str(sim_config())
    port = network.leaderboard.port
    network.leaderboard.stop()

    # Never confirmed as an AI region, and the regions cannot be read: nothing is risked on a silent drop.
    down = invoke("run", "-f", config)
    assert down.exit_code == 4
    assert "no earlier run confirmed FRA as an AI region" in down.stderr
    assert "11 row(s) wait in the outbox" in down.output
    assert len(waiting(state_home)) == 11

    network.leaderboard = SimLeaderboard(network.secret, port=port)
    network.leaderboard.start()
    back = invoke("run", "-f", config)
    assert back.exit_code == 0, back.output
    assert "delivered 11 row(s) left by earlier runs first" in back.output
    rows = network.leaderboard.rows
    assert len(rows) == 22 and waiting(state_home) == []
    first_cycle, second_cycle = rows[:11], rows[11:]
    assert max(r.timestamp for r in first_cycle) <= min(r.timestamp for r in second_cycle)  # oldest first
    assert len({r.model_dump_json() for r in first_cycle}) == 11  # each kept row exactly once

    # Confirmed by that run: when the leaderboard is down again, posting is tried, and stops when it fails.
    network.leaderboard.stop()
    again = invoke("run", "-f", config)
    assert again.exit_code == 4
    assert "FRA was an AI region before: posting" in again.stderr
    assert "posting stopped: the leaderboard failed 3 posts in a row" in again.output
    assert len(waiting(state_home)) == 11


def test_a_passing_5xx_is_retried_at_the_end_of_the_cycle(
    network: SimNetwork, sim_config: Callable[..., Path], state_home: Path
) -> None:
    network.leaderboard.script = [503]
    result = invoke("run", "-f", str(sim_config()))
    assert result.exit_code == 0
    assert "delivered 1 row(s) on the closing retry" in result.output
    assert len(network.leaderboard.rows) == 11 and waiting(state_home) == []


def test_a_wrong_secret_stops_posting_and_keeps_every_row_without_the_secret(
    network: SimNetwork, sim_config: Callable[..., Path], state_home: Path
) -> None:
    network.leaderboard.secret = "the-real-secret"
    result = invoke("run", "-f", str(sim_config(metricsSecret="a-wrong-secret-5d1")))
    assert result.exit_code == 4
    assert "posting stopped: the leaderboard refused the signature (HTTP 403): metricsSecret is wrong" in result.output
    assert network.leaderboard.rejected == [(403, "invalid signature")]  # one try, not eleven
    assert len(waiting(state_home)) == 11 and network.leaderboard.rows == []
    assert "a-wrong-secret-5d1" not in (state_home / "outbox.jsonl").read_text()
    assert "a-wrong-secret-5d1" not in result.output + result.stderr


def test_a_row_the_leaderboard_rejects_is_kept_for_a_person(
    network: SimNetwork, sim_config: Callable[..., Path], state_home: Path
) -> None:
    network.leaderboard.script = [400]
    result = invoke("run", "-f", str(sim_config()))
    assert result.exit_code == 4
    assert "1 row(s) rejected by the leaderboard (HTTP 400)" in result.output
    assert len(network.leaderboard.rows) == 10 and waiting(state_home) == []
    [rejected] = rejected_files(state_home)
    assert "scripted answer 400" in rejected.read_text()


def test_a_transcoding_only_region_is_refused_before_any_job(
    network: SimNetwork, sim_config: Callable[..., Path]
) -> None:
    network.region = "NYC"
    result = invoke("run", "-f", str(sim_config()))
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: region 'NYC' is not an AI region on the leaderboard, which would drop every row; "
        "its AI regions are: FRA, GLOBAL, LAX, MDW\n"
    )
    assert all(orch.served == [] for orch in network.orchestrators)


def test_unreadable_regions_hold_rows_unless_an_earlier_run_confirmed_the_region(
    network: SimNetwork, sim_config: Callable[..., Path], state_home: Path
) -> None:
    config = str(sim_config())
    network.leaderboard.serve_regions = False
    held = invoke("run", "-f", config)
    assert held.exit_code == 4 and network.leaderboard.rows == [] and len(waiting(state_home)) == 11

    network.leaderboard.serve_regions = True
    assert invoke("run", "-f", config).exit_code == 0  # confirms FRA, delivers all 22
    network.leaderboard.serve_regions = False
    trusted = invoke("run", "-f", config)
    assert trusted.exit_code == 0 and "could not read the leaderboard's regions" in trusted.stderr
    assert len(network.leaderboard.rows) == 33


def _start_run(config: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ai_job_tester", "run", "-f", str(config), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_kill_9_between_the_job_and_the_post_loses_no_row(
    network: SimNetwork, sim_config: Callable[..., Path], state_home: Path
) -> None:
    config = sim_config()
    one_job = ("--orchestrator", ORCH_ONE, "--pipeline", "text-to-image")
    network.leaderboard.hold_posts()
    proc = _start_run(config, *one_job)
    try:
        wait_until(lambda: network.leaderboard.held == 1, what="the post to reach the leaderboard")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
        network.leaderboard.release_posts()
    assert len(waiting(state_home)) == 1 and network.leaderboard.rows == []

    result = invoke("run", "-f", str(config), *one_job)  # the killed run's lock does not block this one
    assert result.exit_code == 0, result.output
    assert "delivered 1 row(s) left by earlier runs first" in result.output
    assert [(r.orchestrator, r.pipeline) for r in network.leaderboard.rows] == [
        ("0x1111111111111111111111111111111111111111", "Text to image")
    ] * 2  # the killed run's row once, then this run's own
    assert waiting(state_home) == []


def test_a_second_run_exits_5_while_a_cycle_holds_the_lock(
    network: SimNetwork, sim_config: Callable[..., Path]
) -> None:
    config = sim_config()
    network.leaderboard.hold_posts()
    proc = _start_run(config, "--orchestrator", ORCH_ONE, "--pipeline", "text-to-image")
    try:
        wait_until(lambda: network.leaderboard.held == 1, what="the first run to be mid-cycle")
        second = invoke("run", "-f", str(config))
        assert second.exit_code == 5
        assert second.stderr.startswith(f"Error: another cycle (pid {proc.pid}) is running with the state directory")
        assert second.stderr.count("\n") == 1
    finally:
        proc.kill()
        proc.wait(timeout=10)
        network.leaderboard.release_posts()


def test_a_gateway_that_dies_during_a_job_stops_the_cycle_and_blames_no_orchestrator(
    network: SimNetwork, sim_config: Callable[..., Path]
) -> None:
    orch_two = network.orchestrators[1]
    orch_two.on_job = network.gateway.stop  # the gateway crashes as orch-two's first job arrives
    result = invoke("run", "-f", str(sim_config()))
    assert result.exit_code == 1
    assert "the cycle stopped early: the gateway at http://127.0.0.1:" in result.output
    assert "went away during a job" in result.output
    assert "run 5, passed 5, failed 0" in result.output and "not run 6" in result.output
    assert {row.orchestrator for row in network.leaderboard.rows} == {"0x1111111111111111111111111111111111111111"}
    assert len(network.leaderboard.rows) == 5


def test_a_reply_of_many_megabytes_is_capped_and_failed(network: SimNetwork, sim_config: Callable[..., Path]) -> None:
    network.orchestrators[0].fault = Fault.HUGE
    result = invoke(
        "run", "-f", str(sim_config(captureLimitBytes=65536)), "--orchestrator", ORCH_ONE, "--pipeline", "text-to-image"
    )
    assert result.exit_code == 0
    [row] = network.leaderboard.rows
    assert row.errors[0].error_code == "INVALID_RESPONSE"
    assert row.errors[0].message == "the reply is larger than the capture limit"
    assert len(row.response_payload) <= 65536


def test_a_gateway_that_dies_before_its_media_is_fetched_blames_no_orchestrator(
    network: SimNetwork, sim_config: Callable[..., Path]
) -> None:
    network.gateway.on_media = network.gateway.stop  # the reply came; the gateway dies before the download
    result = invoke("run", "-f", str(sim_config()))
    assert result.exit_code == 1
    assert "went away during a job" in result.output
    assert not [row for row in network.leaderboard.rows if row.errors and row.errors[0].error_code == "BAD_OUTPUT"]
