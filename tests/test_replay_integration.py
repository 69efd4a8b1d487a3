"""Replayed outputs are caught end to end: real webhook, real sockets, the simulated network's caching orchestrator."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from ai_job_tester.cli import app
from ai_job_tester.sandbox import Fault, SimModel, SimNetwork, SimOrchestrator
from ai_job_tester.storage.fingerprints import FINGERPRINTS_FILE

from .conftest import free_port

T2I = {"name": "Text to image", "uri": "text-to-image", "contentType": "application/json",
       "parameters": {"prompt": "a bear", "width": 512, "height": 512}}  # fmt: skip
LLM = {"name": "Llm", "uri": "llm", "contentType": "application/json",
       "parameters": {"messages": [{"role": "user", "content": "How long is an address?"}], "max_tokens": 64,
                      "stream": True}}  # fmt: skip
CACHER = "0x" + "c" * 40


def orchestrator(digit: str, *models: SimModel, fault: Fault = Fault.NONE) -> SimOrchestrator:
    return SimOrchestrator(
        address="0x" + digit * 40, service_uri=f"https://orch-{digit}.sim:8935", models=models, fault=fault
    )


class Runs:
    """Cycles of one tester (one state directory) against one simulated network."""

    def __init__(self, network: SimNetwork, config: Path, state: Path, tmp_path: Path) -> None:
        self.network, self.config, self.state, self.tmp_path = network, config, state, tmp_path
        self.count = 0

    def cycle(self, *extra: str) -> dict[str, Any]:
        self.count += 1
        report = self.tmp_path / f"report-{self.count}.json"
        args = ["run", "-f", str(self.config), "--state-dir", str(self.state), "--report", str(report), *extra]
        result = CliRunner().invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        document: dict[str, Any] = json.loads(report.read_text())
        document["output"] = result.output
        return document


@pytest.fixture
def runs(
    start_network: Callable[..., SimNetwork], write_config: Callable[..., Path], tmp_path: Path
) -> Callable[..., Runs]:
    def make(orchestrators: list[SimOrchestrator], pipelines: list[dict[str, Any]]) -> Runs:
        network = start_network(orchestrators)
        config = write_config(network.tester_config(webhook_port=free_port(), pipelines=pipelines))
        return Runs(network, config, tmp_path / "state", tmp_path)

    return make


def jobs_by(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(job["orchestrator"], job["model"]): job for job in report["jobs"]}


def test_a_cache_answering_two_models_is_caught_within_one_cycle(runs: Callable[..., Runs]) -> None:
    """The same image for two different requests: the later job fails REPLAYED_OUTPUT, naming the earlier one."""
    tester = runs([orchestrator("c", SimModel("Text to image", "sdxl"), SimModel("Text to image", "flux"),
                                fault=Fault.REPLAY)], [T2I])  # fmt: skip
    report = tester.cycle()
    first, second = jobs_by(report)[(CACHER, "sdxl")], jobs_by(report)[(CACHER, "flux")]
    assert first["outcome"] == "passed"
    assert (second["outcome"], second["error_code"]) == ("failed", "REPLAYED_OUTPUT")
    assert f"media are byte-identical to {CACHER}'s Text to image / sdxl job at " in second["message"]
    assert (report["total_outputs_checked"], report["total_replayed_outputs"]) == (2, 1)
    assert "outputs checked for replays 2, replayed 1" in report["output"]
    [row] = [r for r in tester.network.leaderboard.rows if r.model == "flux"]
    assert row.success_rate == 0 and row.errors[0].error_code == "REPLAYED_OUTPUT"


@pytest.mark.parametrize(
    ("pipeline", "kind"), [(T2I, "media are byte-identical to"), (LLM, "reply text is identical to that of")]
)
def test_a_cache_is_caught_in_the_next_cycle_from_the_state_directory(
    runs: Callable[..., Runs], pipeline: dict[str, Any], kind: str
) -> None:
    """One job per cycle, answered from a cache: the second cycle's job matches the first cycle's fingerprint."""
    model = SimModel(pipeline["name"], "m1")
    tester = runs([orchestrator("c", model, fault=Fault.REPLAY), orchestrator("1", model)], [pipeline])
    first = tester.cycle()
    assert {job["outcome"] for job in first["jobs"]} == {"passed"}
    assert (tester.state / FINGERPRINTS_FILE).is_file()
    second = jobs_by(tester.cycle())
    cached, honest = second[(CACHER, "m1")], second[("0x" + "1" * 40, "m1")]
    assert cached["error_code"] == "REPLAYED_OUTPUT"
    assert cached["message"].startswith(f"the {kind} {CACHER}'s {pipeline['name']} / m1 job at ")
    assert honest["outcome"] == "passed"  # the same model on an honest orchestrator: new request, new output


def test_honest_orchestrators_are_never_taken_for_replays(runs: Callable[..., Runs]) -> None:
    """Many cycles, the same model on several orchestrators: fresh requests, fresh outputs, no replay."""
    models = (SimModel("Text to image", "sdxl"), SimModel("Llm", "llama"))
    tester = runs([orchestrator(d, *models) for d in "123"], [T2I, LLM])
    for _ in range(3):
        report = tester.cycle()
        assert report["total_replayed_outputs"] == 0 and report["total_outputs_checked"] == 6


def test_vary_false_jobs_are_not_evidence(runs: Callable[..., Runs]) -> None:
    """The same request every cycle may get the same output: with vary false it is not compared at all."""
    tester = runs([orchestrator("c", SimModel("Text to image", "sdxl"), fault=Fault.REPLAY)],
                  [{**T2I, "vary": False, "parameters": {**T2I["parameters"], "seed": 7}}])  # fmt: skip
    for _ in range(2):
        report = tester.cycle()
        assert [job["outcome"] for job in report["jobs"]] == ["passed"]
        assert report["total_outputs_checked"] == 0 and report["jobs"][0]["output_fingerprint"] is None
    served = tester.network.orchestrators[0].served
    assert [job.params["seed"] for job in served] == ["7", "7"]  # what was configured, sent unchanged


def test_the_metrics_count_checked_and_replayed_outputs_across_cycles(runs: Callable[..., Runs]) -> None:
    """Real counters: the tally lives in the state directory, so the second cycle's values include the first's."""
    tester = runs([orchestrator("c", SimModel("Text to image", "sdxl"), fault=Fault.REPLAY)], [T2I])
    path = tester.tmp_path / "tester.prom"
    for _ in range(2):
        tester.cycle("--metrics-file", str(path))
    families = {f.name: f for f in text_string_to_metric_families(path.read_text())}
    total = {f: s.value for f in ("ai_job_tester_outputs_checked", "ai_job_tester_replayed_outputs")
             for s in families[f].samples if s.name.endswith("_total")}  # fmt: skip
    assert total == {"ai_job_tester_outputs_checked": 2.0, "ai_job_tester_replayed_outputs": 1.0}
    cycle = {s.labels["state"]: s.value for s in families["ai_job_tester_cycle_outputs"].samples}
    assert cycle == {"checked": 1.0, "replayed": 1.0}


@pytest.mark.parametrize("content", [b"{not json", b'{"version": 1, "sightings": [["media", 1]]}', b"\xff" * 10])
def test_a_damaged_fingerprint_file_is_set_aside_and_rebuilt(runs: Callable[..., Runs], content: bytes) -> None:
    """Never a traceback and never a blame: the cycle runs, forgets, and writes a fresh file."""
    tester = runs([orchestrator("1", SimModel("Text to image", "sdxl"))], [T2I])
    tester.state.mkdir(parents=True)
    (tester.state / FINGERPRINTS_FILE).write_bytes(content)
    report = tester.cycle()
    assert [job["outcome"] for job in report["jobs"]] == ["passed"]
    assert (tester.state / (FINGERPRINTS_FILE + ".broken")).read_bytes() == content
    assert json.loads((tester.state / FINGERPRINTS_FILE).read_text())["checked"] == 1


def test_one_object_served_to_every_orchestrator_is_the_gateways_fault_and_held(
    runs: Callable[..., Runs], state_home: Path
) -> None:
    """Three or more orchestrators with the very same media: the gateway's store, not each one's cache."""
    from ai_job_tester.sandbox.replies import png

    tester = runs([orchestrator(d, SimModel("Text to image", "sdxl")) for d in "1234"], [T2I])
    tester.network.gateway.one_object = png(b"the store's one object")
    args = ["run", "-f", str(tester.config), "--state-dir", str(tester.state)]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 6, result.output  # the health gate held rows
    assert "4 orchestrators returned the very same output" in result.output
    stored = tester.network.leaderboard.rows
    assert len(stored) == 1 and stored[0].success_rate == 1  # only the first, which nothing contradicts
    assert not [r for r in stored if r.errors and r.errors[0].error_code == "REPLAYED_OUTPUT"]


def test_a_single_cacher_among_honest_orchestrators_is_still_posted(runs: Callable[..., Runs]) -> None:
    """The hold for shared outputs never shields one orchestrator replaying its own output."""
    honest = [orchestrator(d, SimModel("Text to image", "sdxl")) for d in "12"]
    cacher = orchestrator("c", SimModel("Text to image", "sdxl"), SimModel("Text to image", "flux"), fault=Fault.REPLAY)
    tester = runs([*honest, cacher], [T2I])
    tester.cycle()
    [row] = [r for r in tester.network.leaderboard.rows if r.errors and r.errors[0].error_code == "REPLAYED_OUTPUT"]
    assert row.orchestrator == CACHER
