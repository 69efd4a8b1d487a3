"""Orchestrator faults on the simulated network, and an operator's Ctrl-C, end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ai_job_tester.cli import app
from ai_job_tester.sandbox import Fault, SimModel, SimNetwork, SimOrchestrator

from .conftest import free_port, wait_until

T2I = {
    "name": "Text to image",
    "uri": "text-to-image",
    "capture_response": True,
    "contentType": "application/json",
    "parameters": {"prompt": "a bear"},
    "timeout": 0.5,
}


def orchestrator(name: str, fault: Fault) -> SimOrchestrator:
    return SimOrchestrator(
        address=f"0x{name * 40}"[:42],
        service_uri=f"https://{name}.sim:8935",
        models=(SimModel("Text to image", "sdxl"),),
        fault=fault,
        slow_seconds=3.0,
    )


@pytest.fixture
def faulty() -> Iterator[SimNetwork]:
    orchs = [orchestrator("a", Fault.NONE), orchestrator("b", Fault.EMPTY), orchestrator("c", Fault.SLOW)]
    with SimNetwork(orchs) as network:
        yield network


def test_empty_200_and_slow_replies_are_the_orchestrators_failures(
    faulty: SimNetwork, write_config: Callable[..., Path]
) -> None:
    path = write_config(faulty.tester_config(webhook_port=free_port(), pipelines=[T2I]))
    result = CliRunner().invoke(app, ["run", "-f", str(path)], catch_exceptions=False)
    assert result.exit_code == 0
    rows = {row.orchestrator[:3]: row for row in faulty.leaderboard.rows}
    assert rows["0xa"].success_rate == 1
    assert [e.error_code for e in rows["0xb"].errors] == ["INVALID_RESPONSE"]
    assert rows["0xb"].errors[0].message == "the reply body is empty"
    assert [e.error_code for e in rows["0xc"].errors] == ["TIMEOUT"]
    assert 0.5 <= rows["0xc"].round_trip_time < 3.0


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_abandons_the_job_under_way_prints_the_partial_summary_and_exits(
    faulty: SimNetwork, write_config: Callable[..., Path], signum: signal.Signals, code: int
) -> None:
    slow_last = {**T2I, "timeout": 30}
    path = write_config(faulty.tester_config(webhook_port=free_port(), pipelines=[slow_last]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ai_job_tester", "run", "-f", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        # Orchestrators a and b answer at once; c holds its job for 3 s: signal while c works.
        wait_until(lambda: faulty.gateway.jobs_in_flight > 0 and len(faulty.leaderboard.rows) == 2,
                   what="the slow third job to reach its orchestrator")  # fmt: skip
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == code, stderr
    assert f"interrupted by {signum.name}: partial results above" in stdout
    assert "run 2, passed 1, failed 1" in stdout and "not run 1" in stdout
    assert "Traceback" not in stderr
    # The two finished jobs were delivered; the abandoned one was not.
    assert sorted(row.orchestrator[:3] for row in faulty.leaderboard.rows) == ["0xa", "0xb"]


def test_a_malformed_reply_is_one_failed_row_and_the_cycle_goes_on(write_config: Callable[..., Path]) -> None:
    # Issue #14: 150 headers used to raise out of the transport, stop the lane and exit 1.
    orchs = [orchestrator("a", Fault.NONE), orchestrator("b", Fault.GARBAGE), orchestrator("c", Fault.NONE)]
    with SimNetwork(orchs) as network:
        path = write_config(network.tester_config(webhook_port=free_port(), pipelines=[T2I]))
        result = CliRunner().invoke(app, ["run", "-f", str(path)], catch_exceptions=False)
        assert result.exit_code == 0
        rows = {row.orchestrator[:3]: row for row in network.leaderboard.rows}
    assert rows["0xa"].success_rate == 1 and rows["0xc"].success_rate == 1
    assert [e.error_code for e in rows["0xb"].errors] == ["MALFORMED_REPLY"]
