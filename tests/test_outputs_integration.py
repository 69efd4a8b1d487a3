"""Outputs for machines: JUnit XML, JSON log lines, exit codes for CI, secrets from the environment."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from junitparser import Error, Failure, JUnitXml, Skipped
from typer.testing import CliRunner

from ai_job_tester.sandbox import SimNetwork

from .conftest import GO_CONFIG, free_port

ORCH_ONE = "https://orch-one.sim:8935"


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    from ai_job_tester.cli import app

    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def test_junit_report_reads_in_a_junit_parser(
    network: SimNetwork, sim_config: Callable[..., Path], tmp_path: Path
) -> None:
    path = tmp_path / "report.xml"
    assert invoke("run", "--no-post", "-f", str(sim_config()), "--junit", str(path)).exit_code == 0
    xml = JUnitXml.fromfile(str(path))
    suites = {suite.name: suite for suite in xml}
    assert set(suites) == {
        "0x1111111111111111111111111111111111111111",
        "0x2222222222222222222222222222222222222222",
        "0xabcdef0000000000000000000000000000000003",
    }
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (12, 2, 0, 1)
    third = {case.name: case for case in suites["0xabcdef0000000000000000000000000000000003"]}
    [failure] = third["Text to image / ByteDance/SDXL-Lightning (warm)"].result
    assert isinstance(failure, Failure) and failure.type == "CONNECTION_DROPPED"
    [skipped] = third["Live video to video / comfyui"].result
    assert isinstance(skipped, Skipped)


def test_junit_marks_unattributable_jobs_as_errors(
    network: SimNetwork, sim_config: Callable[..., Path], tmp_path: Path
) -> None:
    network.gateway.tester_mode = False
    path = tmp_path / "report.xml"
    assert invoke("run", "--no-post", "-f", str(sim_config()), "--junit", str(path)).exit_code == 1
    xml = JUnitXml.fromfile(str(path))
    results = [type(case.result[0]) for suite in xml for case in suite if case.result]
    assert results.count(Error) == 11 and xml.errors == 11


def test_fail_on_job_failure_exits_3_only_when_a_job_failed(
    network: SimNetwork, sim_config: Callable[..., Path]
) -> None:
    config = str(sim_config())
    assert invoke("run", "--no-post", "--fail-on-job-failure", "-f", config).exit_code == 3
    healthy = ("--orchestrator", ORCH_ONE)
    assert invoke("run", "--no-post", "--fail-on-job-failure", "-f", config, *healthy).exit_code == 0


def test_json_log_lines_carry_the_jobs_coordinates(network: SimNetwork, sim_config: Callable[..., Path]) -> None:
    result = invoke("run", "--no-post", "--log-format", "json", "-f", str(sim_config()))
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert all({"time", "level", "message"} <= set(line) for line in lines)
    jobs = [line for line in lines if "orchestrator" in line]
    assert len(jobs) == 11
    dropped = next(line for line in jobs if line.get("error_code") == "CONNECTION_DROPPED")
    assert dropped["orchestrator"] == "0xabcdef0000000000000000000000000000000003"
    assert (dropped["pipeline"], dropped["model"], dropped["outcome"]) == (
        "Text to image",
        "ByteDance/SDXL-Lightning",
        "failed",
    )


def test_secrets_and_config_path_can_come_from_the_environment(
    network: SimNetwork, write_config: Callable[..., Path]
) -> None:
    raw = network.tester_config(webhook_port=free_port())
    raw.pop("metricsSecret")
    path = write_config(raw)
    network.leaderboard.secret = "from-the-environment"
    env = {"AI_JOB_TESTER_CONFIG": str(path), "METRICS_SECRET": "from-the-environment"}
    result = invoke("run", "--orchestrator", ORCH_ONE, env=env)
    assert result.exit_code == 0, result.output
    assert len(network.leaderboard.rows) == 5 and network.leaderboard.rejected == []


def test_validate_lists_the_pipelines_it_would_test() -> None:
    result = invoke("validate", "-f", str(GO_CONFIG))
    assert result.exit_code == 0
    assert "7 pipelines to test" in result.output and "test-audio.mp4" in result.output
    assert result.output.rstrip().endswith(f"{GO_CONFIG}: OK")


def test_validate_refuses_an_asset_of_the_wrong_kind(tmp_path: Path) -> None:
    raw = json.loads(GO_CONFIG.read_text())
    (tmp_path / "not-an-image.png").write_text("hello")
    raw["pipelines"][0]["asset"] = "not-an-image.png"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    result = invoke("validate", "-f", str(path))
    assert result.exit_code == 2
    assert "pipelines[0].asset: test file" in result.stderr and "is not a PNG, JPEG or GIF image" in result.stderr


def test_validate_online_asks_the_gateway_and_the_leaderboard(
    network: SimNetwork, sim_config: Callable[..., Path], write_config: Callable[..., Path]
) -> None:
    ok = invoke("validate", "--online", "-f", str(sim_config()))
    assert ok.exit_code == 0, ok.stderr
    assert "3 active orchestrators" in ok.output and "FRA is an AI region" in ok.output

    raw = network.tester_config(webhook_port=free_port())
    raw["broadcasterCliEndpoint"] = f"http://127.0.0.1:{free_port()}"
    dead = invoke("validate", "--online", "-f", str(write_config(raw, "dead.json")))
    assert dead.exit_code == 2 and "cannot reach the gateway's CLI port" in dead.stderr


def test_shell_completion_is_offered() -> None:
    assert "--install-completion" in invoke("--help").output
