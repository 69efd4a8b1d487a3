"""Live video-to-video against the simulated media server and gateway: ffmpeg pushes, reads and times frames."""

from __future__ import annotations

import json
import os
import shutil
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
from ai_job_tester.domain import live
from ai_job_tester.sandbox import SimModel, SimNetwork, SimOrchestrator
from ai_job_tester.sandbox.scenario import LiveBehaviour

from .conftest import free_port, wait_until

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="live tests need ffmpeg (.ci/run installs it)")

CALM = {"id": "Calm Sea", "complexity": "low", "parameters": {"prompt": "a calm sea"}}
LIVE = {"name": "Live video to video", "uri": "live-video-to-video", "capture_response": False,
        "contentType": "application/json", "live": True, "parameters": {"prompt": "a cat", "strength": 0.5},
        "promptVariants": [CALM]}  # fmt: skip
ADDRESS = "0x" + "7" * 40


@pytest.fixture
def live_network(start_network: Callable[..., SimNetwork]) -> Callable[..., SimNetwork]:
    def make(**behaviour: Any) -> SimNetwork:
        orch = SimOrchestrator(ADDRESS, "https://live.sim:8935", (SimModel("Live video to video", "comfyui"),),
                               live=LiveBehaviour(**behaviour))  # fmt: skip
        return start_network([orch])

    return make


def run_live(
    network: SimNetwork, write_config: Callable[..., Path], tmp_path: Path, **settings: Any
) -> tuple[Any, dict[str, Any]]:
    raw = network.tester_config(webhook_port=free_port(), pipelines=[LIVE], liveVideo=network.live_video(**settings))
    report = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["run", "-f", str(write_config(raw)), "--report", str(report)],
                                catch_exceptions=False)  # fmt: skip
    [job] = json.loads(report.read_text())["jobs"]
    return result, job


def test_a_live_stream_is_measured_frame_by_frame_and_posted_as_a_latency(
    live_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = live_network(fps=12)
    result, job = run_live(network, write_config, tmp_path, targetFPS=12)
    assert result.exit_code == 0, result.output
    assert job["outcome"] == "passed" and job["variant"] == "Calm Sea"
    stats = job["live"]
    assert abs(stats["fps"] - 12) <= 1.2  # within 10 % of the simulated rate
    assert stats["frames"] > 10 and stats["prompt_confirmed"] is True
    assert stats["stream_id"].startswith("aiJobTesterStream-low-calm-sea-")
    [row] = network.leaderboard.rows
    assert (row.pipeline, row.model, row.success_rate) == ("Live video to video", "comfyui", 1)
    assert row.round_trip_time == pytest.approx(stats["time_to_first_frame"])  # seconds, lower is better
    payload = json.loads(row.response_payload)
    assert payload["score"] == stats["score"] and 0 < payload["score"] <= 1
    assert json.loads(row.input_parameters) == {"prompt": "a calm sea", "strength": 0.5}  # the variant wins


def test_no_output_fails_by_the_deadline(
    live_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = live_network(output=False)
    _, job = run_live(network, write_config, tmp_path, outputTimeoutSeconds=3)
    assert (job["outcome"], job["error_code"]) == ("failed", "NO_OUTPUT")
    assert network.leaderboard.rows[0].success_rate == 0


def test_a_capped_orchestrator_is_retried_and_passes_once_free(
    live_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = live_network(capped_times=1)
    _, job = run_live(network, write_config, tmp_path)
    assert job["outcome"] == "passed"
    assert len(network.gateway.live.sessions) == 2  # refused once, then measured


def test_an_orchestrator_capped_to_the_end_is_busy_and_never_scored(
    live_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = live_network(capped_times=99)
    result, job = run_live(network, write_config, tmp_path, busyPasses=2)
    assert result.exit_code == 0
    assert job["outcome"] == "busy" and "OrchestratorCapped" in job["message"]
    assert network.leaderboard.rows == []  # a full orchestrator is not a zero
    assert "busy 1 (live orchestrators full through every retry; not scored)" in " ".join(result.output.split())


def test_a_stream_the_gateway_cannot_pin_is_not_blamed_on_the_orchestrator(
    live_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = live_network()
    network.gateway.live.orchestrators = []  # the gateway knows no orchestrator by that service URI
    _, job = run_live(network, write_config, tmp_path)
    assert job["outcome"] == "unrouted" and "no orchestrators available" in job["message"]
    assert network.leaderboard.rows == []


def test_sigterm_mid_stream_leaves_no_ffmpeg_behind(
    live_network: Callable[..., SimNetwork], write_config: Callable[..., Path]
) -> None:
    network = live_network()
    raw = network.tester_config(webhook_port=free_port(), pipelines=[LIVE],
                                liveVideo=network.live_video(testDurationSeconds=30))  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "ai_job_tester", "run", "-f", str(write_config(raw))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    try:
        wait_until(lambda: any(p.poll() is None for p in network.media_server.outputs), seconds=20,
                   what="the stream's output to be read")  # fmt: skip
        [stream] = network.gateway.live.sessions
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr
    wait_until(lambda: _ffmpeg_for(stream) == [], seconds=10, what="every ffmpeg of the stream to exit")
    assert network.leaderboard.rows == []


def _ffmpeg_for(stream: str) -> list[str]:
    found = subprocess.run(["pgrep", "-f", f"ffmpeg.*{stream}"], capture_output=True, text=True, check=False)
    return found.stdout.split()


def test_the_push_reaches_an_rtmp_ingest_with_its_query_as_the_app_name(tmp_path: Path) -> None:
    """The simulated media server speaks HTTP; this checks the same push against a real RTMP listener."""
    from ai_job_tester.config import LiveVideoConfig
    from ai_job_tester.network.livestream import _push_command

    port = free_port()
    log = tmp_path / "listener.log"
    with log.open("w") as sink:
        listener = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "verbose", "-listen", "1",
             "-i", f"rtmp://127.0.0.1:{port}/live/x", "-t", "1", "-f", "null", "-"],
            stdout=sink, stderr=sink,
        )  # fmt: skip
        try:
            settings = LiveVideoConfig.model_validate({"mediaServerURL": f"rtmp://127.0.0.1:{port}"})
            params = {"prompt": "a b"}
            url = live.ingest_url(settings.media_server_url, "aiJobTesterStream-low-x-1",
                                  orchestrator="https://o:8935", params=params, selector="comfyui")  # fmt: skip
            _push_until_heard(_push_command(settings, url), log)
        finally:
            listener.kill()
            listener.wait()
    assert "aiJobTesterStream-low-x-1?orchestrator=https%3A%2F%2Fo%3A8935&params=" in log.read_text()


def _push_until_heard(command: list[str], log: Path) -> None:
    # The listener takes one connection, so readiness cannot be probed: push until it is heard.
    from ai_job_tester.network.livestream import _process

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with _process(command) as push:
            while push.poll() is None and time.monotonic() < deadline:
                if "App field" in log.read_text():
                    return
                time.sleep(0.05)
        time.sleep(0.1)  # refused: the listener was not up yet
    raise AssertionError("the RTMP listener never heard the push")


def test_without_ffmpeg_live_offers_are_skipped_for_that_reason_and_validate_says_so(
    live_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    network = live_network(fps=12)
    config = write_config(network.tester_config(webhook_port=free_port(), pipelines=[LIVE],
                                                liveVideo=network.live_video()))  # fmt: skip
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg on it
    report = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["run", "-f", str(config), "--report", str(report)], catch_exceptions=False)
    assert result.exit_code == 7  # nothing else to test
    [skipped] = json.loads(report.read_text())["skipped"]
    assert skipped["reason"] == "live video needs ffmpeg, which is not installed here"
    checked = CliRunner().invoke(app, ["validate", "-f", str(config)], catch_exceptions=False)
    assert "no: live video needs ffmpeg" in checked.output
