"""Transcoding end to end against the simulated network: real webhook, real sockets, real ffmpeg where installed."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from ai_job_tester.cli import app
from ai_job_tester.sandbox import SimModel, SimNetwork, SimOrchestrator
from ai_job_tester.sandbox.scenario import TranscodeBehaviour, TranscodeFault

from .conftest import free_port

T2I = [{"name": "Text to image", "uri": "text-to-image", "verify_output": False, "contentType": "application/json",
        "parameters": {"prompt": "a bear"}, "timeout": 5}]  # fmt: skip
PROFILES = 2  # the default profiles


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def transcoder(n: int, fault: TranscodeFault = TranscodeFault.NONE, **behaviour: Any) -> SimOrchestrator:
    return SimOrchestrator(f"0x{n:040x}", f"https://t{n}.sim:8935", (SimModel("Text to image", "m"),),
                           transcoding=TranscodeBehaviour(fault=fault, **behaviour))  # fmt: skip


def run(network: SimNetwork, write_config: Callable[..., Path], tmp_path: Path, *args: str, **block: Any) -> Any:
    """Run one transcoding-only cycle; return the CLI result with its report attached."""
    extra = block.pop("extra", {})
    raw = network.tester_config(webhook_port=free_port(), pipelines=T2I, jobType="transcoding",
                                transcoding={"segments": 2, **block}, **extra)  # fmt: skip
    report = tmp_path / "report.json"
    result = invoke("run", "-f", str(write_config(raw)), "--report", str(report), *args)
    result.report = json.loads(report.read_text()) if report.exists() else None
    return result


def jobs_by_orchestrator(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["orchestrator"]: job for job in report["jobs"] if job["pipeline"] == "Transcoding"}


def test_every_active_orchestrator_gets_one_row_that_matches_what_it_transcoded(
    start_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    idle = transcoder(9)
    idle.active = False
    network = start_network([transcoder(1), transcoder(2), idle])
    result = run(network, write_config, tmp_path, segments=3)
    assert result.exit_code == 0, result.output
    rows = {row.orchestrator: row for row in network.leaderboard.transcoding_rows}
    assert sorted(rows) == [transcoder(1).address, transcoder(2).address] and network.leaderboard.rows == []
    for orch in network.orchestrators[:2]:
        row = rows[orch.address]
        assert row.segments_sent == len(orch.transcoded) == 3  # every push reached it, and it alone
        assert row.segments_received == sum(t.renditions for t in orch.transcoded) == 3 * PROFILES
        assert (row.success_rate, row.seg_duration, row.errors) == (1.0, 2.0, [])
        assert row.round_trip_time >= row.upload_time + row.download_time and row.transcode_time > 0
        assert len({t.manifest_id for t in orch.transcoded}) == 1 and "/" not in orch.transcoded[0].manifest_id
    assert idle.transcoded == []
    assert "Transcoding (the leaderboard's transcoding score" in result.output


FAULTS = [
    # (fault, first error code, valid renditions received over 2 segments, behaviour, block)
    (TranscodeFault.ERROR, "422", 0, {}, {}),
    (TranscodeFault.MISSING_RENDITIONS, "MISSING_RENDITIONS", 2, {}, {}),
    (TranscodeFault.WRONG_RESOLUTION, "BAD_RENDITION", 0, {}, {}),
    (TranscodeFault.SLOW, "TIMEOUT", 0, {"slow_seconds": 1.5}, {"timeout": 0.5}),
    (TranscodeFault.DROP, "CONNECTION_DROPPED", 0, {}, {}),
    (TranscodeFault.NO_SESSIONS, "503", 0, {}, {}),
    (TranscodeFault.ZERO_PARTS, "NO_RENDITIONS", 0, {}, {}),
]


@pytest.mark.parametrize(("fault", "code", "received", "behaviour", "block"), FAULTS, ids=[f[0] for f in FAULTS])
def test_each_fault_is_the_orchestrators_failure_with_its_own_code(
    fault: TranscodeFault,
    code: str,
    received: int,
    behaviour: dict[str, Any],
    block: dict[str, Any],
    start_network: Callable[..., SimNetwork],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    if fault is TranscodeFault.WRONG_RESOLUTION and shutil.which("ffprobe") is None and shutil.which("ffmpeg") is None:
        pytest.skip("a rendition's size is read with ffprobe or ffmpeg")
    network = start_network([transcoder(1), transcoder(2, fault, **behaviour)])
    result = run(network, write_config, tmp_path, **block)
    assert result.exit_code == 0, result.output
    rows = {row.orchestrator: row for row in network.leaderboard.transcoding_rows}
    good, bad = rows[transcoder(1).address], rows[transcoder(2).address]
    assert good.success_rate == 1.0 and good.errors == []  # the healthy one is not blamed for its neighbour
    assert bad.segments_sent == 2 and bad.segments_received == received
    assert bad.success_rate == received / PROFILES / 2
    assert bad.errors[0].error_code == code and sum(e.count for e in bad.errors) >= 1
    job = jobs_by_orchestrator(result.report)[bad.orchestrator]
    assert (job["outcome"], job["error_code"], job["posted"]) == ("failed", code, True)


def test_a_mainline_gateways_cached_list_makes_later_streams_unrouted_and_unposted(
    start_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = start_network([transcoder(1), transcoder(2), transcoder(3)], tester_mode=False)
    result = run(network, write_config, tmp_path, segments=1)
    outcomes = sorted(job["outcome"] for job in jobs_by_orchestrator(result.report).values())
    assert outcomes == ["passed", "unrouted", "unrouted"]
    # Only the stream the gateway asked the webhook about is posted, for the orchestrator that transcoded it.
    (row,) = network.leaderboard.transcoding_rows
    transcoded = {t.orchestrator for o in network.orchestrators for t in o.transcoded if t.manifest_id}
    assert row.orchestrator in transcoded
    assert "never asked the webhook during this stream" in result.output


def test_a_gateway_without_the_webhook_token_proves_nothing_and_the_cycle_stops(
    start_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = start_network([transcoder(n) for n in range(1, 5)], gateway_sends_token=False)
    result = run(network, write_config, tmp_path, segments=1)
    assert result.exit_code == 1 and network.leaderboard.transcoding_rows == []
    assert result.report["total_jobs_unrouted"] == 3 and result.report["total_posted"] == 0


def test_the_gateways_session_limit_is_its_own_not_the_orchestrators(
    start_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = start_network([transcoder(1), transcoder(2)], max_sessions=1)  # the first stream lingers
    result = run(network, write_config, tmp_path, segments=1)
    jobs = list(jobs_by_orchestrator(result.report).values())
    assert sorted(job["outcome"] for job in jobs) == ["passed", "rejected"]
    refused = next(job for job in jobs if job["outcome"] == "rejected")
    assert refused["error_code"] == "500" and "-maxSessions" in refused["message"]
    assert len(network.leaderboard.transcoding_rows) == 1  # the refused stream is not posted


def test_one_cycle_tests_ai_and_transcoding_and_checks_both_region_types(
    start_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = start_network([transcoder(1), transcoder(2)])
    raw = network.tester_config(webhook_port=free_port(), pipelines=T2I, transcoding={"segments": 1})
    result = invoke("run", "-f", str(write_config(raw)))
    assert result.exit_code == 0, result.output
    assert sorted(r.orchestrator for r in network.leaderboard.rows) == [transcoder(1).address, transcoder(2).address]
    assert sorted(r.orchestrator for r in network.leaderboard.transcoding_rows) == sorted(
        r.orchestrator for r in network.leaderboard.rows
    )
    assert all(o.most_at_once <= 1 for o in network.orchestrators)


@pytest.mark.parametrize(
    ("regions", "job_type", "message"),
    [
        ({"FRA": ("ai",)}, "ai", "region 'FRA' is not a transcoding region on the leaderboard"),
        ({"NYC": ("transcoding",)}, "ai", "region 'NYC' is not an AI region on the leaderboard"),
    ],
)
def test_the_region_must_take_each_kind_of_row_the_cycle_posts(
    regions: dict[str, tuple[str, ...]],
    job_type: str,
    message: str,
    start_network: Callable[..., SimNetwork],
    write_config: Callable[..., Path],
) -> None:
    network = start_network([transcoder(1)], region=next(iter(regions)))
    network.leaderboard.regions = regions
    raw = network.tester_config(webhook_port=free_port(), pipelines=T2I, jobType=job_type, transcoding={})
    result = invoke("run", "-f", str(write_config(raw)))
    assert result.exit_code == 2 and message in result.stderr
    assert network.orchestrators[0].transcoded == []  # refused before any stream


def test_a_transcoding_only_region_takes_a_transcoding_only_cycle(
    start_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = start_network([transcoder(1)], region="NYC")
    result = run(network, write_config, tmp_path, segments=1)
    assert result.exit_code == 0, result.output
    assert [row.region for row in network.leaderboard.transcoding_rows] == ["NYC"]


def test_two_lanes_share_the_streams_and_never_push_one_orchestrator_twice_at_once(
    start_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = start_network([transcoder(n, latency=0.05) for n in range(1, 5)], gateways=2)
    ports = [free_port() for _ in network.gateways]
    raw = network.tester_config(webhook_ports=ports, pipelines=T2I, jobType="transcoding",
                                transcoding={"segments": 2})  # fmt: skip
    result = invoke("run", "-f", str(write_config(raw)))
    assert result.exit_code == 0, result.output
    rows = network.leaderboard.transcoding_rows
    assert sorted(r.orchestrator for r in rows) == sorted(o.address for o in network.orchestrators)
    assert all(r.success_rate == 1.0 for r in rows)
    assert all(gateway.pushed for gateway in network.gateways)  # both lanes worked
    assert all(o.most_at_once <= 1 for o in network.orchestrators)


def test_the_leaderboard_accepts_every_row_and_scores_it_as_the_summary_does(
    start_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = start_network([transcoder(1), transcoder(2, TranscodeFault.MISSING_RENDITIONS)])
    result = run(network, write_config, tmp_path)
    assert result.exit_code == 0 and network.leaderboard.rejected == []
    board = httpx.get(f"{network.leaderboard.url}/api/aggregated_stats", params={"job_type": "transcoding"}).json()
    ours = {entry["orchestrator"]: entry for entry in result.report["transcoding"]}
    assert sorted(board) == sorted(ours)
    for orch, entry in ours.items():
        scored = board[orch]["FRA"]
        assert scored["success_rate"] == pytest.approx(entry["success_rate"])
        assert scored["round_trip_score"] == pytest.approx(entry["round_trip_score"], abs=1e-6)
        assert scored["score"] == pytest.approx(entry["score"], abs=1e-6)


def test_junit_metrics_and_validate_carry_transcoding(
    start_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = start_network([transcoder(1), transcoder(2, TranscodeFault.ZERO_PARTS)])
    junit, metrics = tmp_path / "junit.xml", tmp_path / "m.prom"
    result = run(network, write_config, tmp_path, "--junit", str(junit), "--metrics-file", str(metrics), segments=1)
    assert result.exit_code == 0, result.output
    xml = junit.read_text()
    assert 'name="Transcoding / P144p30fps16x9+P240p30fps16x9"' in xml and 'type="NO_RENDITIONS"' in xml
    prom = metrics.read_text()
    assert f'ai_job_tester_transcoding_success_rate{{orchestrator="{transcoder(1).address}",region="FRA"}} 1.0' in prom
    assert f'ai_job_tester_transcoding_score{{orchestrator="{transcoder(2).address}",region="FRA"}} 0.0' in prom
    raw = network.tester_config(webhook_port=free_port(), pipelines=T2I, transcoding={"segments": 4})
    checked = invoke("validate", "-f", str(write_config(raw, "v.json")), "--online")
    assert checked.exit_code == 0, checked.output
    assert "transcoding: 4 segment(s) of" in checked.output and "FRA is a transcoding region" in checked.output


def test_a_spent_budget_defers_transcoding_and_the_next_cycle_runs_it(
    start_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    network = start_network([transcoder(1), transcoder(2)])
    first = run(network, write_config, tmp_path, "--max-duration", "0.001", segments=1)
    assert first.report["total_jobs_deferred"] == 2 and network.leaderboard.transcoding_rows == []
    second = run(network, write_config, tmp_path, segments=1)
    assert second.exit_code == 0 and len(network.leaderboard.transcoding_rows) == 2


def test_a_wrong_resolution_is_caught_with_ffmpeg_alone_as_in_the_image(
    start_network: Callable[..., SimNetwork],
    write_config: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg")
    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "ffprobe" else which(name, *a, **k))
    network = start_network([transcoder(1), transcoder(2, TranscodeFault.WRONG_RESOLUTION)])
    result = run(network, write_config, tmp_path)
    assert result.exit_code == 0, result.output
    rows = {row.orchestrator: row for row in network.leaderboard.transcoding_rows}
    assert rows[transcoder(1).address].success_rate == 1.0
    assert rows[transcoder(2).address].errors[0].error_code == "BAD_RENDITION"
