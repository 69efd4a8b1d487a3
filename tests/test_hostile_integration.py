"""Hostile text from an orchestrator, relayed by the gateway, through a whole run: stored, inert, no crash."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ai_job_tester.cli import app
from ai_job_tester.sandbox import Fault, SimModel, SimNetwork, SimOrchestrator

from .conftest import free_port

T2I = [{"name": "Text to image", "uri": "text-to-image", "contentType": "application/json",
        "parameters": {"prompt": "a bear"}, "verify_output": False}]  # fmt: skip
NASTY = "nul\x00 lone\ud800 ansi\x1b[2J\x1b[31m markup[/y][bold] newline\nFAKE 2026 INFO job passed " + "m" * 200_000


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_hostile_error_message_is_stored_shown_inert_and_never_crashes_the_run(
    start_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path, log_format: str
) -> None:
    model = (SimModel("Text to image", "sdxl"),)
    network = start_network([
        SimOrchestrator("0x" + "1" * 40, "https://good.sim", model),
        SimOrchestrator("0x" + "2" * 40, "https://bad.sim", model, fault=Fault.ERROR, error_status=400,
                        error_message=NASTY),
    ])  # fmt: skip
    config = write_config(network.tester_config(webhook_port=free_port(), pipelines=T2I))
    report = tmp_path / "report.json"
    result: Any = CliRunner().invoke(
        app, ["run", "-f", str(config), "--log-format", log_format, "--report", str(report)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.stderr and "Logging error" not in result.stderr
    rows = {row.orchestrator[2]: row for row in network.leaderboard.rows}
    assert set(rows) == {"1", "2"}  # both stored: the failure is the orchestrator's own (the other passed)
    message = rows["2"].errors[0].message
    assert "\x00" not in message and "\x1b" not in message and len(message) <= 2048
    assert not any("FAKE 2026" in line and not line.startswith(("{", "20")) for line in result.stderr.splitlines())
    json.loads(report.read_text())  # the report stays valid JSON


def test_a_gateway_started_without_the_webhook_token_is_told_which_flag_it_needs(
    start_network: Callable[..., SimNetwork], write_config: Callable[..., Path]
) -> None:
    orchs = [
        SimOrchestrator(f"0x{n:040x}", f"https://o{n}.sim", (SimModel("Text to image", "sdxl"),)) for n in (1, 2, 3)
    ]
    network = start_network(orchs, gateway_sends_token=False)
    config = write_config(network.tester_config(webhook_port=free_port(), pipelines=T2I))
    result: Any = CliRunner().invoke(app, ["run", "-f", str(config)], catch_exceptions=False)
    assert result.exit_code == 1
    assert "arrived without the webhook token and were not counted" in result.stderr
    assert "/orchestrators/<webhookToken>" in result.output  # the summary's stop line names the flag
    assert network.leaderboard.rows == []  # nothing can be attributed, nothing is posted


def test_a_hostile_transcoding_error_is_stored_shown_inert_and_never_crashes_the_run(
    start_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    from ai_job_tester.sandbox import TranscodeBehaviour, TranscodeFault

    hostile = TranscodeBehaviour(fault=TranscodeFault.ERROR, error=NASTY)
    network = start_network([
        SimOrchestrator("0x" + "1" * 40, "https://good.sim", ()),
        SimOrchestrator("0x" + "2" * 40, "https://bad.sim", (), transcoding=hostile),
    ])  # fmt: skip
    raw = network.tester_config(webhook_port=free_port(), jobType="transcoding", transcoding={"segments": 1})
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    args = ["run", "-f", str(write_config(raw)), "--report", str(report), "--junit", str(junit)]
    result: Any = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.stderr and "Logging error" not in result.stderr
    rows = {row.orchestrator[2]: row for row in network.leaderboard.transcoding_rows}
    assert set(rows) == {"1", "2"}
    message = rows["2"].errors[0].message or ""
    assert "\x00" not in message and "\x1b" not in message and len(message) <= 2048
    assert "posted 2 of 2 results" in result.stdout  # the summary was drawn: markup in the message crashed nothing
    json.loads(report.read_text())
    assert len(junit.read_bytes()) < 100_000  # a 200 KB message is cut everywhere
