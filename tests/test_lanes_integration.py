"""Several gateways as lanes, a time budget, and rotation, against simulated gateways on loopback."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ai_job_tester.cli import app
from ai_job_tester.config import parse_config
from ai_job_tester.errors import ConfigError
from ai_job_tester.sandbox import SimModel, SimNetwork, SimOrchestrator

from .conftest import free_port

T2I = [{"name": "Text to image", "uri": "text-to-image", "capture_response": True, "verify_output": False,
        "contentType": "application/json", "parameters": {"prompt": "a bear"}, "timeout": 5}]  # fmt: skip


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def fleet(orchestrators: int, models: int, latency: float) -> list[SimOrchestrator]:
    return [
        SimOrchestrator(f"0x{n + 1:040x}", f"https://o{n + 1}.sim:8935",
                        tuple(SimModel("Text to image", f"m{m}") for m in range(models)), latency=latency)
        for n in range(orchestrators)
    ]  # fmt: skip


@pytest.fixture
def lanes_network(start_network: Callable[..., SimNetwork]) -> Callable[..., SimNetwork]:
    def make(orchestrators: int, models: int, latency: float, gateways: int) -> SimNetwork:
        return start_network(fleet(orchestrators, models, latency), gateways=gateways)

    return make


def lanes_config(network: SimNetwork, write_config: Callable[..., Path], **extra: Any) -> Path:
    ports = [free_port() for _ in network.gateways]
    return write_config(network.tester_config(webhook_ports=ports, pipelines=T2I, **extra))


def test_lanes_share_the_work_and_never_test_one_orchestrator_twice_at_once(
    lanes_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = lanes_network(orchestrators=6, models=3, latency=0.05, gateways=3)
    report = tmp_path / "r.json"
    result = invoke("run", "-f", str(lanes_config(network, write_config)), "--report", str(report))
    assert result.exit_code == 0, result.output
    assert len(network.leaderboard.rows) == 18
    assert all(orch.most_at_once == 1 for orch in network.orchestrators)  # never measured under its own load
    per_gateway = [len(g.handled) for g in network.gateways]
    assert sum(per_gateway) == 18 and all(n > 0 for n in per_gateway)  # every lane worked
    # Every job reached exactly the orchestrator it was posted for, once.
    served = Counter((j.orchestrator, j.model) for o in network.orchestrators for j in o.served)
    posted = Counter((r.orchestrator, r.model) for r in network.leaderboard.rows)
    assert served == posted and set(served.values()) == {1}


def test_lanes_run_at_the_same_time(
    lanes_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = lanes_network(orchestrators=4, models=4, latency=0.1, gateways=4)
    report = tmp_path / "r.json"
    invoke("run", "--no-post", "-f", str(lanes_config(network, write_config)), "--report", str(report))
    assert json.loads(report.read_text())["total_jobs_passed"] == 16
    # The gateways' own records: how many jobs were in flight at once, at the most.
    spans = [(h.started, h.started + h.seconds) for g in network.gateways for h in g.handled]
    most = max(sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans)
    assert most >= 2  # lanes overlapped, rather than taking turns


def test_a_budget_defers_what_it_cannot_start_and_rotation_runs_it_next(
    lanes_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = lanes_network(orchestrators=4, models=2, latency=0.2, gateways=1)
    config = str(lanes_config(network, write_config))
    first, second = tmp_path / "1.json", tmp_path / "2.json"

    started = time.monotonic()
    result = invoke("run", "-f", config, "--max-duration", "0.5", "--report", str(first))
    assert time.monotonic() - started < 0.5 + 5 + 2  # the budget plus the longest job timeout, with slack
    assert result.exit_code == 0 and "deferred" in result.output
    ran_first = {
        (j["orchestrator"], j["model"]) for j in json.loads(first.read_text())["jobs"] if j["outcome"] == "passed"
    }
    deferred = {(j["orchestrator"], j["model"]) for j in json.loads(first.read_text())["jobs"]
                if j["outcome"] == "deferred"}  # fmt: skip
    assert ran_first and deferred and len(ran_first) + len(deferred) == 8

    dry = invoke("run", "-f", config, "--dry-run")
    listed = [line for line in dry.output.splitlines() if "0x0000" in line]
    first_listed = {(line.split("│")[2].strip(), line.split("│")[5].strip()) for line in listed[: len(deferred)]}
    assert first_listed == deferred  # the dry run shows what the next cycle runs first

    invoke("run", "-f", config, "--max-duration", "0.5", "--report", str(second))
    jobs = sorted(json.loads(second.read_text())["jobs"], key=lambda j: j["timestamp"])
    ran_second = [(j["orchestrator"], j["model"]) for j in jobs if j["outcome"] == "passed"]
    # What was left out last time runs first this time.
    assert ran_second and set(ran_second[: len(deferred)]) <= deferred


def test_a_lane_whose_gateway_dies_hands_its_jobs_to_the_others(
    lanes_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = lanes_network(orchestrators=4, models=3, latency=0.03, gateways=2)
    config = lanes_config(network, write_config)
    second = network.gateways[1]
    second.on_job = second.stop  # lane 2's gateway crashes as its first job arrives
    report = tmp_path / "r.json"
    result = invoke("run", "-f", str(config), "--report", str(report))
    assert result.exit_code == 0, result.output
    document = json.loads(report.read_text())
    assert (document["total_jobs_passed"], document["total_jobs_failed"], document["total_jobs_not_run"]) == (12, 0, 0)
    assert len(document["lane_failures"]) == 1 and document["lane_failures"][0].startswith("lane 2: ")
    assert "the other lanes took its jobs" in result.output
    # The job under way when the gateway died was not blamed on its orchestrator: lane 1 ran it again.
    assert len(network.leaderboard.rows) == 12 and all(row.success_rate == 1 for row in network.leaderboard.rows)


def test_gateways_config_is_checked(tmp_path: Path) -> None:
    base = {"region": "FRA", "metricsApiEndpoint": "http://lb/api/post_stats", "metricsSecret": "s",
            "pipelines": T2I}  # fmt: skip
    lane = {"broadcasterJobEndpoint": "http://g1:8935", "broadcasterCliEndpoint": "http://g1:7935"}
    config = parse_config({**base, "gateways": [lane, {**lane, "internalWebServerPort": "7935"}]}, source=tmp_path)
    assert [g.internal_web_server_port for g in config.lanes] == [7934, 7935]
    with pytest.raises(ConfigError, match=r"gateways\[1\].internalWebServerPort: 7934 is already another lane's"):
        parse_config({**base, "gateways": [lane, lane]}, source=tmp_path)
    with pytest.raises(ConfigError, match="broadcasterJobEndpoint: give each gateway in gateways, not also"):
        parse_config({**base, **lane, "gateways": [lane]}, source=tmp_path)
    with pytest.raises(ConfigError, match="broadcasterCliEndpoint: required key is missing"):
        parse_config({**base, "broadcasterJobEndpoint": "http://g:8935"}, source=tmp_path)


def test_live_jobs_go_to_a_lane_whose_gateway_is_still_up(
    start_network: Callable[..., SimNetwork], write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from ai_job_tester.cycle import runner
    from ai_job_tester.sandbox.network import shipped_pipelines

    if shutil.which("ffmpeg") is None:
        pytest.skip("live jobs are planned only where ffmpeg is installed")
    models = (SimModel("Text to image", "m"), SimModel("Live video to video", "comfyui"))
    network = start_network([SimOrchestrator("0x" + "1" * 40, "https://o1.sim:8935", models)], gateways=2)
    first = network.gateways[0]
    first.on_job = first.stop  # lane 1's gateway dies at its first batch job
    live = [p for p in shipped_pipelines() if p.get("live")]
    ports = [free_port() for _ in network.gateways]
    raw = network.tester_config(webhook_ports=ports, pipelines=T2I + live, liveVideo=network.live_video())
    config = write_config(raw)
    used: list[str] = []
    monkeypatch.setattr(runner, "run_live", lambda jobs, lane: used.append(lane.job_endpoint))
    result = invoke("run", "-f", str(config))
    assert result.exit_code == 0, result.output
    assert used == [network.gateways[1].http_url]  # never the dead gateway, whose jobs would all be blamed
