"""What an operator's cron sees: exit codes that do not hide held rows, broken state, and a bounded SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ai_job_tester.cli import app
from ai_job_tester.cycle.runner import INTERRUPT_DEADLINE_SECONDS
from ai_job_tester.sandbox import SimModel, SimNetwork, SimOrchestrator

from .conftest import free_port, wait_until

T2I = {"name": "Text to image", "uri": "text-to-image", "contentType": "application/json",
       "parameters": {"prompt": "a bear"}, "verify_output": False}  # fmt: skip


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_a_report_that_cannot_be_written_does_not_hide_undelivered_rows(
    network: SimNetwork, sim_config: Callable[..., Path], tmp_path: Path
) -> None:
    network.leaderboard.stop()  # never confirmed as an AI region: the rows wait in the outbox (exit 4)
    result = invoke("run", "-f", str(sim_config()), "--report", str(tmp_path / "no" / "such" / "dir" / "r.json"))
    assert result.exit_code == 4
    assert "Error: cannot write the report to" in result.stderr and "Traceback" not in result.stderr


def test_a_report_that_cannot_be_written_is_exit_1_when_nothing_else_is_wrong(
    network: SimNetwork, sim_config: Callable[..., Path], tmp_path: Path
) -> None:
    result = invoke("run", "-f", str(sim_config()), "--junit", str(tmp_path / "no" / "dir" / "j.xml"))
    assert result.exit_code == 1 and "Error: cannot write the JUnit report to" in result.stderr
    assert len(network.leaderboard.rows) == 11  # the cycle itself was fine


def test_a_network_with_nothing_this_config_tests_warns_and_exits_7(
    start_network: Callable[..., SimNetwork], write_config: Callable[..., Path]
) -> None:
    network = start_network([SimOrchestrator("0x" + "1" * 40, "https://o.sim", (SimModel("Upscale", "x4"),))])
    result = invoke("run", "-f", str(write_config(network.tester_config(webhook_port=free_port(), pipelines=[T2I]))))
    assert result.exit_code == 7
    assert "nothing to test: the gateway listed 1 orchestrators" in result.stderr


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("outbox.jsonl", lambda p: p.mkdir(), "outbox.jsonl is not a regular file; move it out of the way"),
        ("lock", lambda p: p.mkdir(), "cannot open the lock file"),
    ],
)
def test_a_broken_state_file_is_one_error_line(
    network: SimNetwork, sim_config: Callable[..., Path], tmp_path: Path, name: str,
    make: Callable[[Path], None], expected: str,
) -> None:  # fmt: skip
    state = tmp_path / "state"
    state.mkdir()
    make(state / name)
    result = invoke("run", "-f", str(sim_config()), "--state-dir", str(state))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and expected in result.stderr and "Traceback" not in result.stderr


def test_a_damaged_rotation_file_is_set_aside_and_the_cycle_runs(
    network: SimNetwork, sim_config: Callable[..., Path], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "rotation.json").write_text(json.dumps({"k": None}))
    result = invoke("run", "-f", str(sim_config()), "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    assert (state / "rotation.json.broken").exists() and "set aside" in result.stderr


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_a_post_hangs_ends_the_run_within_the_deadline_and_keeps_the_rows(
    network: SimNetwork, write_config: Callable[..., Path], tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    """docker stop gives 10 s: the run must print its summary and exit 143 within its own 5 s."""
    path = write_config(network.tester_config(webhook_port=free_port(), pipelines=[T2I]))
    state = tmp_path / "state"
    network.leaderboard.hold_posts()  # every post hangs, as behind a stuck database
    proc = subprocess.Popen(
        [sys.executable, "-m", "ai_job_tester", "run", "-f", str(path), "--state-dir", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        wait_until(lambda: network.leaderboard.held > 0, seconds=30, what="a post to hang")
        sent = time.monotonic()
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
        network.leaderboard.release_posts()
    assert proc.returncode == code, stderr
    assert took < INTERRUPT_DEADLINE_SECONDS + 1.5, f"took {took:.1f} s"  # the deadline, plus process exit
    assert f"interrupted by {signum.name}: partial results above" in stdout and "Traceback" not in stderr
    lines = (state / "outbox.jsonl").read_text().splitlines()
    assert any('"row"' in line for line in lines)  # the stored rows stay for the next run
