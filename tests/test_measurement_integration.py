"""What a user gets, end to end: media that exists and is what it claims, streams that finish, scores."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from ai_job_tester.cli import app
from ai_job_tester.sandbox import Fault, SimModel, SimNetwork, SimOrchestrator
from ai_job_tester.sandbox.network import shipped_pipelines

ORCH_ONE = "https://orch-one.sim:8935"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def one_job(
    network: SimNetwork, sim_config: Callable[..., Path], pipeline: str, tmp_path: Path, **extra: Any
) -> dict[str, Any]:
    report = tmp_path / "report.json"
    result = invoke("run", "-f", str(sim_config(**extra)), "--orchestrator", ORCH_ONE, "--pipeline", pipeline,
                    "--report", str(report))  # fmt: skip
    assert result.exit_code == 0, result.output
    [job] = json.loads(report.read_text())["jobs"]
    return job  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault.MISSING_MEDIA, "answered HTTP 404"),
        (Fault.WRONG_MEDIA, "is not a PNG or JPEG: it is HTML text, 35 bytes"),  # described, never quoted
    ],
)
def test_media_that_is_missing_or_of_the_wrong_kind_fails_the_job(
    network: SimNetwork, sim_config: Callable[..., Path], tmp_path: Path, fault: Fault, message: str
) -> None:
    network.orchestrators[0].fault = fault
    job = one_job(network, sim_config, "text-to-image", tmp_path)
    assert (job["outcome"], job["error_code"]) == ("failed", "BAD_OUTPUT")
    assert message in job["message"]
    [row] = network.leaderboard.rows
    assert row.success_rate == 0 and row.errors[0].error_code == "BAD_OUTPUT"


@pytest.mark.parametrize(("media_hosts", "outcome"), [([], "rejected"), (["localhost"], "passed")])
def test_media_on_another_host_are_fetched_only_when_the_config_allows_it(
    network: SimNetwork, sim_config: Callable[..., Path], tmp_path: Path, media_hosts: list[str], outcome: str
) -> None:
    """Media on a host mediaHosts does not list are not fetched, and the unchecked job is not posted."""
    network.orchestrators[0].fault = Fault.FOREIGN_MEDIA
    # "localhost" is the simulated gateway under another name: fetched, the media would pass.
    job = one_job(network, sim_config, "text-to-image", tmp_path, mediaHosts=media_hosts)
    assert job["outcome"] == outcome
    if outcome == "rejected":  # the gateway writes media URLs: an unlisted store is the config's, not theirs
        assert job["error_code"] == "MEDIA_HOST_NOT_ALLOWED" and not job["posted"]
        assert "was not fetched: its host 'localhost' is neither the gateway's nor in mediaHosts" in job["message"]
        assert network.leaderboard.rows == []


@pytest.mark.parametrize(("pipeline", "kind"), [("image-to-video", "video"), ("text-to-speech", "speech")])
def test_video_and_speech_are_checked_as_their_own_kinds(
    network: SimNetwork, sim_config: Callable[..., Path], tmp_path: Path, pipeline: str, kind: str
) -> None:
    network.orchestrators[0].models += (SimModel("Text to speech", "tts"),)
    network.orchestrators[0].fault = Fault.WRONG_MEDIA
    job = one_job(network, sim_config, pipeline, tmp_path)
    assert job["error_code"] == "BAD_OUTPUT" and f"the {kind} at /stream/" in job["message"]


def test_verify_output_off_skips_the_check(
    network: SimNetwork, sim_config: Callable[..., Path], tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    network.orchestrators[0].fault = Fault.MISSING_MEDIA
    pipelines = shipped_pipelines()
    for pipeline in pipelines:
        pipeline["verify_output"] = False
    job = one_job(network, sim_config, "text-to-image", tmp_path, pipelines=pipelines)
    assert job["outcome"] == "passed" and job["output_check_seconds"] is None


def test_the_download_is_timed_apart_from_the_round_trip(
    network: SimNetwork, sim_config: Callable[..., Path], tmp_path: Path
) -> None:
    network.gateway.media_delay = 0.3
    job = one_job(network, sim_config, "text-to-image", tmp_path)
    assert job["outcome"] == "passed"
    assert job["output_check_seconds"] >= 0.3 > job["round_trip_time"]


def test_a_streamed_llm_reply_reports_first_token_and_rate(
    network: SimNetwork, sim_config: Callable[..., Path], tmp_path: Path
) -> None:
    network.orchestrators[0].token_seconds = 0.05
    job = one_job(network, sim_config, "llm", tmp_path)  # the seed config streams
    assert job["outcome"] == "passed"
    assert job["time_to_first_token"] < job["round_trip_time"] - 0.05
    assert job["tokens_per_second"] is not None and 5 < job["tokens_per_second"] < 40


@pytest.mark.parametrize(
    ("fault", "code"), [(Fault.STREAM_NO_FINISH, "STREAM_INCOMPLETE"), (Fault.STREAM_ERROR, "STREAM_ERROR")]
)
def test_a_stream_without_a_finish_or_with_an_error_fails(
    network: SimNetwork, sim_config: Callable[..., Path], tmp_path: Path, fault: Fault, code: str
) -> None:
    network.orchestrators[0].fault = fault
    job = one_job(network, sim_config, "llm", tmp_path)
    assert (job["outcome"], job["error_code"]) == ("failed", code)


def test_the_testers_scores_agree_with_the_leaderboards(tmp_path: Path, write_config: Callable[..., Path]) -> None:
    from .conftest import free_port

    orchestrators = [
        SimOrchestrator(f"0x{n}{'0' * 39}", f"https://o{n}.sim:8935", (SimModel("Text to image", "sdxl"),), latency=lat)
        for n, lat in enumerate((0.01, 0.05, 0.12, 0.03))
    ]
    orchestrators[3].fault = Fault.ERROR
    report = tmp_path / "report.json"
    with SimNetwork(orchestrators) as network:
        config = write_config(network.tester_config(webhook_port=free_port()))
        assert invoke("run", "-f", str(config), "--report", str(report)).exit_code == 0
        params = {"pipeline": "Text to image", "model": "sdxl", "region": "FRA"}
        board = httpx.get(f"{network.leaderboard.url}/api/aggregated_stats", params=params).json()
    jobs = json.loads(report.read_text())["jobs"]
    assert len(jobs) == 4
    for job in jobs:
        theirs = board[job["orchestrator"]]["FRA"]
        assert job["score"] == pytest.approx(theirs["score"], abs=1e-6)
        assert job["round_trip_score"] == pytest.approx(theirs["round_trip_score"], abs=1e-6)
    assert sorted(job["score"] for job in jobs)[0] == 0.0  # the failing one
