"""What ai-job-tester adds to what it measures, against the simulated network on loopback.

    python tests/bench/bench.py            # the full run, under two minutes on 2 cores
    python tests/bench/bench.py --quick    # a smoke run with small counts

The tester runs as its own process (``python -m ai_job_tester run``), as in production;
the simulated gateway, orchestrators and leaderboard run in this one. Prints one table:
figure, value, target. The README holds the latest figures and the machine they came from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ai_job_tester.domain.discovery import parse_ai_capabilities, parse_registered
from ai_job_tester.domain.plan import build_plan
from ai_job_tester.network.gateway import GatewayCli
from ai_job_tester.network.webhook import Webhook
from ai_job_tester.sandbox import SimModel, SimNetwork, SimOrchestrator
from ai_job_tester.sandbox.network import shipped_pipelines

MiB = 1024 * 1024


@dataclass(frozen=True)
class Figure:
    name: str
    value: str
    target: str
    met: bool | None = None  # None: reported, no target


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pipelines(*routes: str, **change: Any) -> list[dict[str, Any]]:
    return [{**p, **change} for p in shipped_pipelines() if p["uri"] in routes]


def _network(orchestrators: int, models: int, latency: float, gateways: int = 1) -> SimNetwork:
    return SimNetwork(
        gateways=gateways,
        orchestrators=[
            SimOrchestrator(
                address=f"0x{n:040x}",
                service_uri=f"https://o{n}.sim:8935",
                models=tuple(SimModel("Text to image", f"model-{m}") for m in range(models)),
                latency=latency,
            )
            for n in range(orchestrators)
        ],
    )


def _run_tester(
    network: SimNetwork, pipelines: list[dict[str, Any]], folder: Path, *extra: str
) -> tuple[dict[str, Any], float]:
    """Run one cycle in a child process; return its report and its peak resident memory in MB."""
    config = folder / "config.json"
    report = folder / "report.json"
    if not config.exists():
        ports = [_free_port() for _ in network.gateways]
        lanes = {"webhook_ports": ports} if len(ports) > 1 else {"webhook_port": ports[0]}
        config.write_text(json.dumps(network.tester_config(pipelines=pipelines, **lanes)))
    command = [sys.executable, "-m", "ai_job_tester", "run", "-f", str(config), "--report", str(report),
               "--state-dir", str(folder / "state"), *extra]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0.0
    # VmHWM, not ru_maxrss: after fork and exec, ru_maxrss still counts this (large) process's pages.
    while proc.poll() is None:
        peak = max(peak, _high_water_mb(proc.pid))
        time.sleep(0.005)
    if proc.returncode != 0:
        raise SystemExit(f"the tester exited {proc.returncode}; run it by hand with {config}")
    return json.loads(report.read_text()), peak


def _high_water_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next((line for line in status.splitlines() if line.startswith("VmHWM:")), "VmHWM: 0 kB")
    return int(line.split()[1]) / 1024


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_round_trip(jobs: int, folder: Path) -> list[Figure]:
    orchestrators = max(1, jobs // 10)
    with _network(orchestrators, 10, latency=0.002) as network:
        report, _ = _run_tester(network, _pipelines("text-to-image", verify_output=False), folder)
        served = {(j.orchestrator, j.model): j.seconds for o in network.orchestrators for j in o.served}
        handled = {(h.orchestrator, h.model): h.seconds for h in network.gateway.handled}
        webhook = list(network.gateway.webhook_seconds)
    passing = [j for j in report["jobs"] if j["outcome"] == "passed"]
    vs_orch = [(j["round_trip_time"] - served[(j["orchestrator"], j["model"])]) * 1000 for j in passing]
    vs_gateway = [(j["round_trip_time"] - handled[(j["orchestrator"], j["model"])]) * 1000 for j in passing]
    webhook_ms = [s * 1000 for s in webhook]
    return [
        Figure(f"round-trip bias vs orchestrator time, median ({len(passing)} jobs)",
               f"{statistics.median(vs_orch):.2f} ms", "≤ 1 ms", statistics.median(vs_orch) <= 1),
        Figure("round-trip bias vs orchestrator time, p99", f"{_percentile(vs_orch, 0.99):.2f} ms", "≤ 3 ms",
               _percentile(vs_orch, 0.99) <= 3),
        Figure("round-trip bias vs gateway service time, median (the tester's own share)",
               f"{statistics.median(vs_gateway):.2f} ms", "≤ 0.5 ms", statistics.median(vs_gateway) <= 0.5),
        Figure("round-trip bias vs gateway service time, p99", f"{_percentile(vs_gateway, 0.99):.2f} ms", "≤ 1.5 ms",
               _percentile(vs_gateway, 0.99) <= 1.5),
        Figure(f"webhook answer time as the gateway sees it, median ({len(webhook_ms)} calls)",
               f"{statistics.median(webhook_ms):.3f} ms", "≤ 0.5 ms", statistics.median(webhook_ms) <= 0.5),
        Figure("webhook answer time, p99", f"{_percentile(webhook_ms, 0.99):.3f} ms", "reported"),
    ]  # fmt: skip


def bench_overhead(jobs: int, folder: Path) -> list[Figure]:
    figures = []
    for label, pipelines, posting in (
        ("post + outbox + output check", _pipelines("text-to-image"), True),
        ("jobs only (--no-post, no output check)", _pipelines("text-to-image", verify_output=False), False),
    ):
        with _network(max(1, jobs // 10), 10, latency=0.0) as network:
            sub = folder / label.split()[0]
            sub.mkdir()
            cpu_before = _children_cpu()
            report = _overhead_cycle(network, pipelines, sub, posting)
            tester_cpu = _children_cpu() - cpu_before
            orch_time = sum(j.seconds for o in network.orchestrators for j in o.served)
            # The simulated gateway's own work (this process's Python, on the same 2 cores): serving
            # each job (its call to the tester's webhook included) and each media download.
            sim_time = sum(h.seconds for h in network.gateway.handled) + sum(network.gateway.media_seconds)
        jobs_run = max(1, report["total_jobs"])
        wall = report["finished_at"] - report["started_at"]
        per_job = (wall - orch_time) / jobs_run * 1000
        own = (wall - max(orch_time, sim_time)) / jobs_run * 1000
        figures += [
            Figure(f"overhead per job, {label} ({report['total_jobs']} jobs)", f"{per_job:.2f} ms", "≤ 3 ms",
                   per_job <= 3),
            Figure("  of which the simulated gateway serving the job and its media", f"{per_job - own:.2f} ms",
                   "reported"),
            Figure("  the rest: the tester's own time between jobs", f"{own:.2f} ms", "reported"),
            Figure("  the tester's CPU per job (whole process, start-up included)",
                   f"{tester_cpu / jobs_run * 1000:.2f} ms", "reported"),
        ]  # fmt: skip
    return figures


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _overhead_cycle(network: SimNetwork, pipelines: list[dict[str, Any]], folder: Path, posting: bool) -> Any:
    return _run_tester(network, pipelines, folder, *(() if posting else ("--no-post",)))[0]


def bench_memory(sizes_mb: Sequence[int], folder: Path) -> list[Figure]:
    figures = []
    peaks = []
    for size in sizes_mb:
        asset = folder / f"asset-{size}.png"
        with asset.open("wb") as handle:  # a PNG header, then padding: the gateway checks only the header
            handle.write(b"\x89PNG\r\n\x1a\n")
            handle.truncate(size * MiB)
        sub = folder / f"memory-{size}"
        sub.mkdir()
        with _network(1, 1, latency=0.0) as network:
            network.orchestrators[0].models = (SimModel("Image to image", "model-0"),)
            pipelines = _pipelines("image-to-image", asset=str(asset), verify_output=False)
            report, peak = _run_tester(network, pipelines, sub)
        assert report["total_jobs_passed"] == 1, report["jobs"]
        peaks.append(peak)
        figures.append(Figure(f"peak RSS sending a {size} MB asset", f"{peak:.0f} MB",
                              "≤ 100 MB", peak <= 100))  # fmt: skip
    if len(peaks) == 2:
        growth = peaks[1] - peaks[0]
        figures.append(Figure(f"RSS growth from {sizes_mb[0]} MB to {sizes_mb[1]} MB asset", f"{growth:+.1f} MB",
                              "flat", abs(growth) < 10))  # fmt: skip
    return figures


def bench_planning(orchestrators: int, models: int) -> list[Figure]:
    with (
        _network(orchestrators, models, latency=0.0) as network,
        Webhook.bind("127.0.0.1", 0, token=network.webhook_token) as hook,
    ):
        network.point_webhook(hook.port)
        pipelines = [p for p in _parsed_pipelines()]
        started = time.perf_counter()
        with httpx.Client() as client:
            cli = GatewayCli(client, network.gateway.cli_url)
            found = cli.registered_orchestrators()
            hook.show(o.service_uri for o in found)
            plan = build_plan(found, cli.offers(), pipelines)
        seconds = time.perf_counter() - started
        registered = httpx.get(network.gateway.cli_url + "/registeredOrchestrators").json()
        capabilities = httpx.get(network.gateway.cli_url + "/getOrchestratorAICapabilities").json()
    tracemalloc.start()
    build_plan(parse_registered(registered), parse_ai_capabilities(capabilities), pipelines)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    label = f"{orchestrators} orchestrators × {models} models = {len(plan.jobs)} jobs"
    return [
        Figure(f"discovery over HTTP and planning, {label}", f"{seconds * 1000:.0f} ms", "< 1 s", seconds < 1),
        Figure("memory to parse and plan them (tracemalloc peak)", f"{peak / MiB:.1f} MB", "reported"),
    ]


def _parsed_pipelines() -> Any:
    from ai_job_tester.config import parse_config

    raw = {"region": "FRA", "metricsApiEndpoint": "http://x/api/post_stats", "metricsSecret": "s",
           "broadcasterJobEndpoint": "http://x", "broadcasterCliEndpoint": "http://x",
           "pipelines": shipped_pipelines()}  # fmt: skip
    return parse_config(raw, source=Path("bench")).pipeline_specs()


def bench_lanes(jobs: int, latency: float, folder: Path) -> list[Figure]:
    figures = []
    single = None
    for lanes in (1, 2, 4):
        sub = folder / f"lanes-{lanes}"
        sub.mkdir()
        with _network(max(4, jobs // 10), 10 if jobs >= 40 else 1, latency, gateways=lanes) as network:
            report, _ = _run_tester(network, _pipelines("text-to-image", verify_output=False), sub, "--no-post")
        wall = report["finished_at"] - report["started_at"]
        single = single or wall
        figures.append(Figure(f"cycle of {report['total_jobs']} jobs of {latency * 1000:.0f} ms with {lanes} lane(s)",
                              f"{wall:.2f} s", f"speed-up {single / wall:.2f}x", None))  # fmt: skip
    return figures


def bench_lane_bias(jobs: int, lanes: int, folder: Path) -> list[Figure]:
    """The tester's own share of each round trip while several lanes share its interpreter."""
    with _network(max(lanes, jobs // 10), 10, latency=0.002, gateways=lanes) as network:
        report, _ = _run_tester(network, _pipelines("text-to-image", verify_output=False), folder, "--no-post")
        handled = {(h.orchestrator, h.model): h.seconds for g in network.gateways for h in g.handled}
    bias = [(j["round_trip_time"] - handled[(j["orchestrator"], j["model"])]) * 1000
            for j in report["jobs"] if j["outcome"] == "passed"]  # fmt: skip
    median, p99 = statistics.median(bias), _percentile(bias, 0.99)
    return [Figure(f"round-trip bias vs gateway service time with {lanes} lanes, median / p99",
                   f"{median:.2f} / {p99:.2f} ms", "≤ 0.5 / ≤ 1.5 ms", median <= 0.5 and p99 <= 1.5)]  # fmt: skip


def bench_rotation(jobs: int, latency: float, folder: Path) -> list[Figure]:
    """How many budget-limited cycles (a quarter of a full cycle each) cover every job once."""
    with _network(max(2, jobs // 10), 10 if jobs >= 40 else 2, latency) as network:
        full = jobs * latency
        seen: set[tuple[str, str]] = set()
        cycles = 0
        total = None
        while total is None or len(seen) < total:
            cycles += 1
            report, _ = _run_tester(network, _pipelines("text-to-image", verify_output=False), folder,
                                    "--no-post", "--max-duration", f"{full / 4:.3f}")  # fmt: skip
            total = report["expected_total_jobs"]
            seen |= {(j["orchestrator"], j["model"]) for j in report["jobs"] if j["outcome"] == "passed"}
            if cycles > 12:
                break
    return [Figure(f"cycles with a quarter-cycle budget to cover all {total} jobs", str(cycles), "≈ 4 (rotation)",
                   None)]  # fmt: skip


def bench_startup(runs: int, folder: Path) -> list[Figure]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ai_job_tester", "--help"], stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    help_ms = statistics.median(times) * 1000
    # From the process's start to the gateway's first discovery request, on a one-job network.
    firsts = []
    with _network(1, 1, latency=0.0) as network:
        for n in range(runs):
            network.gateway.first_discovery_at = None
            sub = folder / f"startup-{n}"
            sub.mkdir()
            started = time.perf_counter()
            _run_tester(network, _pipelines("text-to-image", verify_output=False), sub, "--no-post", "--dry-run")
            assert network.gateway.first_discovery_at is not None
            firsts.append(network.gateway.first_discovery_at - started)
    first_ms = statistics.median(firsts) * 1000
    return [
        Figure(f"`ai-job-tester --help` wall time, median of {runs}", f"{help_ms:.0f} ms", "≤ 100 ms", help_ms <= 100),
        Figure(f"start-up to the first discovery request, median of {runs}", f"{first_ms:.0f} ms", "≤ 150 ms",
               first_ms <= 150),
    ]  # fmt: skip


def bench_dry_run(orchestrators: int, models: int, folder: Path) -> list[Figure]:
    """A whole ``--dry-run`` process on a large network: discovery, planning and what it prints."""
    with _network(orchestrators, models, latency=0.0) as network:
        config = folder / "config.json"
        config.write_text(json.dumps(network.tester_config(pipelines=_pipelines("text-to-image"),
                                                           webhook_port=_free_port())))  # fmt: skip
        command = [sys.executable, "-m", "ai_job_tester", "run", "-f", str(config), "--dry-run",
                   "--state-dir", str(folder / "state")]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        seconds = time.perf_counter() - started
    jobs = orchestrators * models
    return [Figure(f"`run --dry-run` whole process, {jobs} jobs", f"{seconds:.2f} s", "≤ 1.5 s", seconds <= 1.5)]


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown cpu")  # fmt: skip
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run, not figures to quote")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ai-job-tester-bench-") as scratch:
        folder = Path(scratch)
        (folder / "rtt").mkdir()
        (folder / "overhead").mkdir()
        (folder / "memory").mkdir()
        (folder / "lanes").mkdir()
        (folder / "rotation").mkdir()
        (folder / "dry-run").mkdir()
        (folder / "startup").mkdir()
        figures = [
            *bench_round_trip(20 if args.quick else 300, folder / "rtt"),
            *bench_overhead(20 if args.quick else 300, folder / "overhead"),
            *bench_memory((1, 5) if args.quick else (10, 100), folder / "memory"),
            *bench_planning(*((50, 2) if args.quick else (1000, 10))),
            *bench_lanes(8 if args.quick else 80, 0.02 if args.quick else 0.05, folder / "lanes"),
            *bench_lane_bias(20 if args.quick else 300, 4, folder / "lanes"),
            *bench_rotation(8 if args.quick else 80, 0.02 if args.quick else 0.05, folder / "rotation"),
            *bench_dry_run(*((50, 2) if args.quick else (1000, 10)), folder / "dry-run"),
            *bench_startup(2 if args.quick else 7, folder / "startup"),
        ]
    width = max(len(f.name) for f in figures)
    print(f"{'figure':<{width}}  {'value':>10}  target")
    for f in figures:
        mark = "" if f.met is None else ("  ok" if f.met else "  MISSED")
        print(f"{f.name:<{width}}  {f.value:>10}  {f.target}{mark}")
    print(f"machine: {machine()}; bench took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
