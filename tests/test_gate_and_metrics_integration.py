"""A broken tester holds its fire; results reach Prometheus."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from ai_job_tester.cli import app
from ai_job_tester.sandbox import Fault, SimModel, SimNetwork, SimOrchestrator
from ai_job_tester.storage.outbox import HELD_JOURNAL, Outbox

from .conftest import free_port

T2I = [{"name": "Text to image", "uri": "text-to-image", "capture_response": True,
        "contentType": "application/json", "parameters": {"prompt": "a bear"}}]  # fmt: skip


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def fleet(faults: list[Fault]) -> list[SimOrchestrator]:
    return [
        SimOrchestrator(
            f"0x{n + 1:040x}", f"https://o{n + 1}.sim:8935", (SimModel("Text to image", "sdxl"),), fault=fault
        )
        for n, fault in enumerate(faults)
    ]


@pytest.fixture
def run_fleet(
    start_network: Callable[..., SimNetwork], write_config: Callable[..., Path]
) -> Callable[..., tuple[Any, SimNetwork]]:
    def run(faults: list[Fault], *extra: str, **config: Any) -> tuple[Any, SimNetwork]:
        network = start_network(fleet(faults))
        path = write_config(network.tester_config(webhook_port=free_port(), pipelines=T2I, **config))
        return invoke("run", "-f", str(path), *extra), network

    return run


def held_rows(state_home: Path) -> int:
    box = Outbox(state_home, HELD_JOURNAL)
    try:
        return box.count()
    finally:
        box.close()


def test_when_every_orchestrator_fails_nothing_is_posted_and_the_rows_are_held(
    run_fleet: Callable[..., tuple[Any, SimNetwork]], state_home: Path
) -> None:
    result, network = run_fleet([Fault.ERROR] * 5)
    assert result.exit_code == 6
    assert network.leaderboard.rows == []
    assert "health gate: nothing passed and all 5 orchestrators tested failed: the tester or its gateway" in (
        " ".join(result.output.split())
    )
    assert held_rows(state_home) == 5


def test_too_few_orchestrators_are_no_evidence_against_the_tester(
    run_fleet: Callable[..., tuple[Any, SimNetwork]], state_home: Path
) -> None:
    result, network = run_fleet([Fault.ERROR] * 4)
    assert result.exit_code == 0
    assert len(network.leaderboard.rows) == 4 and held_rows(state_home) == 0


def test_failures_before_the_first_pass_are_released_once_a_job_passes(
    run_fleet: Callable[..., tuple[Any, SimNetwork]], state_home: Path
) -> None:
    result, network = run_fleet([Fault.ERROR, Fault.DROP, Fault.NONE, Fault.ERROR])
    assert result.exit_code == 0
    rows = network.leaderboard.rows
    assert sorted(row.success_rate for row in rows) == [0, 0, 0, 1]
    assert held_rows(state_home) == 0 and "held by the health gate" not in result.output


def test_a_healthy_cycle_holds_nothing(network: SimNetwork, sim_config: Callable[..., Path], state_home: Path) -> None:
    assert invoke("run", "-f", str(sim_config())).exit_code == 0
    assert len(network.leaderboard.rows) == 11 and held_rows(state_home) == 0


def test_the_gate_can_be_turned_off(run_fleet: Callable[..., tuple[Any, SimNetwork]]) -> None:
    result, network = run_fleet([Fault.ERROR] * 5, healthGateOrchestrators=0)
    assert result.exit_code == 0 and len(network.leaderboard.rows) == 5


def test_held_rows_are_listed_and_released_on_an_operators_word(
    run_fleet: Callable[..., tuple[Any, SimNetwork]], state_home: Path
) -> None:
    run_fleet([Fault.ERROR] * 5)
    listing = invoke("outbox")
    assert listing.exit_code == 0 and "5 row(s) held by the health gate" in listing.output
    assert "0x0000000000000000000000000000000000000001" in listing.output

    released = invoke("outbox", "--release-held")
    assert "released 5 held row(s) to the outbox" in released.output
    assert "0 row(s) held" in released.output and "5 row(s) waiting for delivery" in released.output

    second, network = run_fleet([Fault.NONE] * 5)
    assert second.exit_code == 0
    assert "delivered 5 row(s) left by earlier runs first" in second.output
    assert [row.success_rate for row in network.leaderboard.rows] == [0] * 5 + [1] * 5


def test_no_post_still_says_the_tester_is_at_fault(run_fleet: Callable[..., tuple[Any, SimNetwork]]) -> None:
    result, _ = run_fleet([Fault.ERROR] * 5, "--no-post")
    assert result.exit_code == 6 and "the tester or its gateway is the likely fault" in " ".join(result.output.split())


def test_the_metrics_file_holds_the_cycle(run_fleet: Callable[..., tuple[Any, SimNetwork]], tmp_path: Path) -> None:
    path = tmp_path / "ai_job_tester.prom"
    result, _ = run_fleet([Fault.NONE, Fault.ERROR], "--metrics-file", str(path))
    assert result.exit_code == 0
    families = {family.name: family for family in text_string_to_metric_families(path.read_text())}
    success = {s.labels["orchestrator"]: s.value for s in families["ai_job_tester_job_success"].samples}
    assert success == {"0x0000000000000000000000000000000000000001": 1.0,
                       "0x0000000000000000000000000000000000000002": 0.0}  # fmt: skip
    [sample, *_] = families["ai_job_tester_job_round_trip_seconds"].samples
    assert sample.labels == {"region": "FRA", "orchestrator": sample.labels["orchestrator"],
                             "pipeline": "Text to image", "model": "sdxl"} and sample.value > 0  # fmt: skip
    jobs = {s.labels["outcome"]: s.value for s in families["ai_job_tester_cycle_jobs"].samples}
    assert jobs["passed"] == 1 and jobs["failed"] == 1 and jobs["not_run"] == 0
    assert families["ai_job_tester_cycle_duration_seconds"].samples[0].value > 0
    assert families["ai_job_tester_cycle_last_finished_timestamp_seconds"].samples[0].value > 1.7e9
    assert not list(tmp_path.glob("ai_job_tester.prom.*"))  # the temporary file was renamed into place


class _Pushgateway(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.command, self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_metrics_are_pushed_under_a_job_named_for_the_region(run_fleet: Callable[..., tuple[Any, SimNetwork]]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pushgateway)
    _Pushgateway.received = []
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        result, _ = run_fleet([Fault.NONE], "--pushgateway", f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0
    [(method, path, body)] = _Pushgateway.received
    assert (method, path) == ("PUT", "/metrics/job/ai_job_tester_FRA")
    names = {family.name for family in text_string_to_metric_families(body.decode())}
    assert {"ai_job_tester_job_success", "ai_job_tester_cycle_duration_seconds"} <= names


def _orch(n: int, model: str, status: int | None = None) -> SimOrchestrator:
    fault = {} if status is None else {"fault": Fault.ERROR, "error_status": status}
    return SimOrchestrator(f"0x{n:040x}", f"https://o{n}.sim:8935", (SimModel("Text to image", model),), **fault)


@pytest.mark.parametrize(
    ("orchestrators", "held", "code"),
    [
        ([_orch(1, "m", 422), _orch(2, "m", 422), _orch(3, "m", 422), _orch(4, "n")], {"m"}, 6),
        ([_orch(1, "m", 422), _orch(2, "m")], set(), 0),
        ([_orch(1, "m", 422), _orch(2, "m", 500), _orch(3, "n")], set(), 0),
    ],
    ids=["every orchestrator refused m with 422", "one refused and one passed", "a 422 and a 500"],
)
def test_a_4xx_from_every_orchestrator_of_a_model_is_our_request_and_is_held(
    start_network: Callable[..., SimNetwork],
    write_config: Callable[..., Path],
    state_home: Path,
    orchestrators: list[SimOrchestrator],
    held: set[str],
    code: int,
) -> None:
    network = start_network(orchestrators)
    pipelines = [{**T2I[0], "verify_output": False}]
    config = write_config(network.tester_config(webhook_port=free_port(), pipelines=pipelines))
    result = invoke("run", "-f", str(config))
    assert result.exit_code == code, result.output
    posted = {row.model for row in network.leaderboard.rows}
    assert not posted & held  # one wrong parameter never zeroes a model for everyone
    assert posted == {o.models[0].name for o in orchestrators} - held
    assert held_rows(state_home) == sum(o.models[0].name in held for o in orchestrators)
