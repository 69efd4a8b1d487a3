"""The real CLI against the simulated network on loopback: every job reaches exactly its orchestrator."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ai_job_tester.cli import app
from ai_job_tester.domain.routes import route_of
from ai_job_tester.sandbox import SimNetwork

from .conftest import free_port

runner = CliRunner()

EXPECTED_FAILURES = {
    ("0x2222222222222222222222222222222222222222", "Image to text"): "500",
    ("0xabcdef0000000000000000000000000000000003", "Text to image"): "CONNECTION_DROPPED",
}


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def served(network: SimNetwork) -> Counter[tuple[str, str, str]]:
    return Counter((job.orchestrator, job.route, job.model) for orch in network.orchestrators for job in orch.served)


def test_every_planned_job_reaches_exactly_the_orchestrator_it_is_posted_for(
    network: SimNetwork, sim_config: Callable[..., Path], tmp_path: Path
) -> None:
    report_path = tmp_path / "report.json"
    result = invoke("run", "-f", str(sim_config()), "--report", str(report_path))
    assert result.exit_code == 0, result.output

    rows = network.leaderboard.rows
    posted = Counter((row.orchestrator, route_of(row.pipeline), row.model) for row in rows)
    assert posted == served(network)  # each posted row is a job that orchestrator really served, once
    assert all(count == 1 for count in posted.values())
    assert len(rows) == 11 and network.leaderboard.rejected == []

    for row in rows:
        expected_error = EXPECTED_FAILURES.get((row.orchestrator, row.pipeline))
        assert row.success_rate == (0 if expected_error else 1), row
        assert [e.error_code for e in row.errors] == ([expected_error] if expected_error else [])
        assert row.region == "FRA" and row.round_trip_time > 0

    report = json.loads(report_path.read_text())
    assert (report["expected_total_jobs"], report["total_jobs"], report["total_jobs_passed"]) == (11, 11, 9)
    assert (report["total_jobs_failed"], report["total_jobs_tester_error"], report["total_posted"]) == (2, 0, 11)
    assert {s["pipeline"] for s in report["skipped"]} == {"Live video to video"}
    # The inactive orchestrator is never tested.
    assert not any(job["orchestrator"].startswith("0x4444") for job in report["jobs"])


def test_cold_models_are_posted_as_cold(network: SimNetwork, sim_config: Callable[..., Path]) -> None:
    invoke("run", "-f", str(sim_config()), "--pipeline", "image-to-video")
    assert [(row.model_is_warm, row.pipeline) for row in network.leaderboard.rows] == [(False, "Image to video")]


def test_mainline_capability_shape_gives_the_same_jobs(network: SimNetwork, sim_config: Callable[..., Path]) -> None:
    network.gateway.capability_api = "network"
    result = invoke("run", "-f", str(sim_config()))
    assert result.exit_code == 0
    assert len(network.leaderboard.rows) == 11
    assert Counter((r.orchestrator, route_of(r.pipeline), r.model) for r in network.leaderboard.rows) == served(network)


def test_dry_run_prints_the_plan_and_sends_nothing(network: SimNetwork, sim_config: Callable[..., Path]) -> None:
    result = invoke("run", "--dry-run", "-f", str(sim_config()))
    assert result.exit_code == 0
    assert "Plan: 11 jobs on 3 orchestrators" in result.output
    assert "cold" in result.output and "stabilityai/stable-video-diffusion" in result.output
    assert served(network) == Counter() and network.leaderboard.rows == []


def test_no_post_keeps_results_local(network: SimNetwork, sim_config: Callable[..., Path], tmp_path: Path) -> None:
    report_path = tmp_path / "r.json"
    result = invoke("run", "--no-post", "-f", str(sim_config()), "--report", str(report_path))
    assert result.exit_code == 0 and "results were not posted (--no-post)" in result.output
    assert network.leaderboard.rows == [] and sum(served(network).values()) == 11
    assert all(job["posted"] is None for job in json.loads(report_path.read_text())["jobs"])


def test_filters_limit_the_cycle(network: SimNetwork, sim_config: Callable[..., Path]) -> None:
    result = invoke(
        "run", "-f", str(sim_config()), "--orchestrator", "https://orch-one.sim:8935", "--pipeline", "Llm",
        "--pipeline", "audio-to-text",
    )  # fmt: skip
    assert result.exit_code == 0
    assert sorted(r.pipeline for r in network.leaderboard.rows) == ["Audio to text", "Llm"]


def test_a_gateway_not_in_tester_mode_gets_nothing_posted(network: SimNetwork, sim_config: Callable[..., Path]) -> None:
    network.gateway.tester_mode = False  # asks the webhook once, then routes from its cache
    result = invoke("run", "-f", str(sim_config()))
    assert network.leaderboard.rows == []
    assert result.exit_code == 1  # stopped after the first three, instead of running the whole cycle
    assert "unrouted 3, rejected 0, not run 8" in result.output
    assert "the first 3 jobs ran without the gateway asking the webhook" in result.output
    assert "-aiTesterGateway=true" in result.output


def test_a_request_the_gateway_rejects_before_routing_is_not_posted(
    network: SimNetwork, sim_config: Callable[..., Path]
) -> None:
    broken_llm = {
        "name": "Llm",
        "uri": "llm",
        "capture_response": True,
        "contentType": "application/json",
        "parameters": {"messages": [{"role": "user", "content": "hi"}]},
    }  # no max_tokens, no stream
    result = invoke("run", "-f", str(sim_config(pipelines=[broken_llm])))
    assert result.exit_code == 0
    assert network.leaderboard.rows == [] and served(network) == Counter()
    assert "rejected the request before routing it (HTTP 400: missing required fields)" in result.output
    assert "1 job(s) rejected by the gateway before routing and not posted" in result.output


def test_unreachable_gateway_is_a_tester_error_with_one_line(
    write_config: Callable[[dict[str, Any]], Path], network: SimNetwork
) -> None:
    raw = network.tester_config(webhook_port=free_port())
    raw["broadcasterCliEndpoint"] = f"http://127.0.0.1:{free_port()}"
    result = invoke("run", "-f", str(write_config(raw)))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot reach the gateway's CLI port at http://127.0.0.1:")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_busy_webhook_port_is_a_tester_error(network: SimNetwork, write_config: Callable[..., Path]) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        raw = network.tester_config(webhook_port=holder.getsockname()[1])
        result = invoke("run", "-f", str(write_config(raw)))
    assert result.exit_code == 1 and "is already in use" in result.stderr


def test_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"region": "FRA",}')
    result = invoke("run", "-f", str(path))
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"Error: {path}: invalid JSON at line 1, column 18: Expecting property name enclosed in double quotes\n"
    )


def test_secrets_appear_in_no_output_log_or_report(
    network: SimNetwork, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    secret, token = "leaderboard-secret-9f3a", "gateway-token-77c1"
    network.leaderboard.secret = secret
    raw = network.tester_config(webhook_port=free_port(), metricsSecret=secret, broadcasterRequestToken=token)
    report_path = tmp_path / "r.json"
    result = invoke("run", "-v", "-f", str(write_config(raw)), "--report", str(report_path))
    assert result.exit_code == 0 and len(network.leaderboard.rows) == 11
    for text in (result.output, result.stderr, report_path.read_text()):
        assert secret not in text and token not in text
    assert all(
        secret not in row.model_dump_json() and token not in row.model_dump_json() for row in network.leaderboard.rows
    )


def test_demo_runs_a_full_cycle() -> None:
    result = invoke("demo")
    assert result.exit_code == 0
    live = 1 if shutil.which("ffmpeg") else 0  # the demo has one live orchestrator when ffmpeg is there
    # Every active orchestrator (three) transcodes a stream next to its AI jobs.
    assert f"accepted {11 + live} AI rows and 3 transcoding rows, and rejected 0." in result.output


def test_module_entry_point_and_help() -> None:
    done = subprocess.run([sys.executable, "-m", "ai_job_tester", "run", "--help"], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0 and "--dry-run" in done.stdout


COMMANDS = ["run", "demo", "validate", "outbox"]


def test_the_readme_covers_every_command() -> None:
    assert sorted(typer.main.get_command(app).commands) == sorted(COMMANDS)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_every_option_is_in_the_readme(command: str) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    assert click_command.help and f"ai-job-tester {command}" in readme
    for param in click_command.params:
        for opt in param.opts:
            if opt.startswith("--"):
                assert f"`{opt}" in readme, f"{command} {opt} is not documented in the README"
