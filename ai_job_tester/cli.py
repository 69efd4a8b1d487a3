"""The command line: parse options, call the library, turn its errors into exit codes.

Exit codes: 0 the cycle completed (orchestrator failures are data, not errors);
1 tester error (or an output file could not be written); 2 usage or config error;
3 a job failed (with --fail-on-job-failure); 4 rows left undelivered or set aside;
5 another cycle holds the lock; 6 the health gate held rows; 7 nothing was tested;
130 SIGINT; 143 SIGTERM. When several apply: 130/143, then 1 (the cycle stopped),
6, 3, 4, 1 (an output file), 7, 0.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .errors import TesterError

if TYPE_CHECKING:
    from .config import Config
    from .cycle import RunOptions
    from .network.webhook import Webhook
    from .output.report import CycleReport

app = typer.Typer(
    help="Test every orchestrator of a Livepeer AI gateway and post the results to the leaderboard.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    # Plain help: typer's rich help imports rich's markdown and syntax modules, which tripled `--help`'s time.
    rich_markup_mode=None,
)


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


ConfigOption = Annotated[
    Path,
    typer.Option(
        "-f",
        "--config",
        envvar="AI_JOB_TESTER_CONFIG",
        help="The config file (the Go tester's format works unchanged).",
        readable=False,  # load_config reports an unreadable file in one Error: line, not click's box
    ),
]
ReportOption = Annotated[
    Optional[Path], typer.Option("--report", help="Write the cycle's JSON report to this file.", dir_okay=False)
]
JunitOption = Annotated[
    Optional[Path],
    typer.Option("--junit", help="Write JUnit XML: a suite per orchestrator, a case per job.", dir_okay=False),
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log each job as it starts, too.")]
LogFormatOption = Annotated[LogFormat, typer.Option("--log-format", help="text, or json: one JSON object per line.")]
StateDirOption = Annotated[
    Optional[Path],
    typer.Option("--state-dir", help="Where undelivered rows and the lock live (overrides stateDir).", file_okay=False),
]
MetricsFileOption = Annotated[
    Optional[Path],
    typer.Option("--metrics-file", help="Write Prometheus metrics here (node_exporter's textfile collector).",
                 dir_okay=False),
]  # fmt: skip
PushgatewayOption = Annotated[
    Optional[str], typer.Option("--pushgateway", help="Push Prometheus metrics to this Pushgateway URL.")
]
DEFAULT_CONFIG = Path("configs/config.json")


@dataclass(frozen=True, slots=True)
class Outputs:
    """What the operator asked to see and keep, apart from what the cycle does."""

    report: Path | None = None
    junit: Path | None = None
    verbose: bool = False
    log_format: LogFormat = LogFormat.TEXT
    fail_on_job_failure: bool = False
    metrics_file: Path | None = None
    pushgateway: str | None = None


def _fail(exc: TesterError) -> typer.Exit:
    typer.echo(f"Error: {exc}", err=True)
    return typer.Exit(code=exc.exit_code)


@app.command()
def run(
    config: ConfigOption = DEFAULT_CONFIG,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Discover and print the plan; send no job, post nothing.")
    ] = False,
    orchestrator: Annotated[
        Optional[list[str]],
        typer.Option("--orchestrator", help="Test only this orchestrator (address or service URI); repeatable."),
    ] = None,
    pipeline: Annotated[
        Optional[list[str]],
        typer.Option("--pipeline", help="Test only this pipeline (capability name or route); repeatable."),
    ] = None,
    model: Annotated[Optional[list[str]], typer.Option("--model", help="Test only this model; repeatable.")] = None,
    no_post: Annotated[
        bool, typer.Option("--no-post", help="Keep results local: post nothing to the leaderboard.")
    ] = False,
    max_duration: Annotated[
        Optional[float],
        typer.Option("--max-duration", help="Start no job after this many seconds (overrides maxDuration).", min=0.001),
    ] = None,
    fail_on_job_failure: Annotated[
        bool, typer.Option("--fail-on-job-failure", help="Exit 3 when any job failed (for CI smoke checks).")
    ] = False,
    report: ReportOption = None,
    junit: JunitOption = None,
    metrics_file: MetricsFileOption = None,
    pushgateway: PushgatewayOption = None,
    state_dir: StateDirOption = None,
    log_format: LogFormatOption = LogFormat.TEXT,
    verbose: VerboseOption = False,
) -> None:
    """Run one test cycle against the gateway in CONFIG."""
    from .config import load_config
    from .cycle import RunOptions
    from .domain.plan import Filters

    filters = Filters(tuple(orchestrator or ()), tuple(pipeline or ()), tuple(model or ()))
    options = RunOptions(
        filters=filters, dry_run=dry_run, post=not no_post, state_dir=state_dir, max_duration=max_duration
    )
    outputs = Outputs(report, junit, verbose, log_format, fail_on_job_failure, metrics_file, pushgateway)
    try:
        code = _execute(load_config(config, environ=os.environ), options, outputs)
    except TesterError as exc:
        raise _fail(exc) from None
    raise typer.Exit(code=code)


@app.command()
def demo(
    report: ReportOption = None,
    junit: JunitOption = None,
    state_dir: StateDirOption = None,
    log_format: LogFormatOption = LogFormat.TEXT,
    verbose: VerboseOption = False,
) -> None:
    """Run a full cycle against the built-in simulated network: no gateway needed."""
    from .config import parse_config
    from .cycle import RunOptions
    from .network.webhook import Webhook
    from .output.console import stdout_console
    from .sandbox import SimNetwork

    outputs = Outputs(report, junit, verbose, log_format)
    try:
        with SimNetwork() as network, tempfile.TemporaryDirectory(prefix="ai-job-tester-demo-") as scratch:
            webhook = Webhook.bind("127.0.0.1", 0)
            # Live video needs ffmpeg; without it the demo says so and tests the rest.
            raw = network.tester_config(webhook_port=webhook.port)
            raw.setdefault("transcoding", {})  # transcoding next to AI: every orchestrator gets a stream
            if shutil.which("ffmpeg"):
                raw["liveVideo"] = network.live_video()
            else:
                typer.echo("Live video tests are skipped: ffmpeg is not installed.", err=True)
            config = parse_config(raw, source=Path("<demo>"))
            # The demo's rows go to the simulated leaderboard: keep them apart from a real outbox.
            options = RunOptions(state_dir=state_dir or Path(scratch))
            code = _execute(config, options, outputs, webhook=webhook)
            board = network.leaderboard
            transcoding = len(board.transcoding_rows)
            stdout_console().print(
                f"The simulated leaderboard accepted {len(board.rows)} AI rows and {transcoding} transcoding rows, "
                f"and rejected {len(board.rejected)}."
            )
    except TesterError as exc:
        raise _fail(exc) from None
    raise typer.Exit(code=code)


@app.command()
def outbox(
    config: Annotated[
        Optional[Path],
        typer.Option(
            "-f", "--config", envvar="AI_JOB_TESTER_CONFIG", help="Read stateDir from this config.", readable=False
        ),
    ] = None,
    state_dir: StateDirOption = None,
    release_held: Annotated[
        bool, typer.Option("--release-held", help="Move held rows to the outbox: the next run posts them first.")
    ] = False,
) -> None:
    """List the rows held by the health gate, waiting for delivery, or rejected; release held ones."""
    from .config import load_config
    from .output.console import render_inventory, stdout_console
    from .storage.inventory import read_inventory
    from .storage.inventory import release_held as release
    from .storage.state import default_state_dir, prepare_state_dir

    try:
        configured = load_config(config, environ=os.environ).state_dir if config is not None else None
        folder = prepare_state_dir(state_dir or configured or default_state_dir())
        if release_held:
            count = release(folder)
            stdout_console().print(f"released {count} held row(s) to the outbox; the next run posts them first")
        render_inventory(read_inventory(folder), folder, stdout_console())
    except TesterError as exc:
        raise _fail(exc) from None


@app.command()
def validate(
    config: ConfigOption = DEFAULT_CONFIG,
    online: Annotated[
        bool, typer.Option("--online", help="Also check that the gateway's CLI port and the leaderboard answer.")
    ] = False,
) -> None:
    """Check CONFIG and its test files, and print the pipelines it would test."""
    from .config import load_config
    from .output.console import render_pipelines, stdout_console
    from .validation import check_online, describe_transcoding, summarise

    console = stdout_console()
    try:
        loaded = load_config(config, environ=os.environ)
        if loaded.pipelines:
            render_pipelines(summarise(loaded, has_ffmpeg=shutil.which("ffmpeg") is not None), console)
        lines = [line for line in (describe_transcoding(loaded),) if line]
        lines += check_online(loaded) if online else []
    except TesterError as exc:
        raise _fail(exc) from None
    for line in lines:
        console.print(line)
    console.print(f"{config}: OK")


def _execute(config: Config, options: RunOptions, outputs: Outputs, *, webhook: Webhook | None = None) -> int:
    from .cycle import run_cycle
    from .cycle.interrupts import Interrupted, signals_raise
    from .output.console import LogObserver, ProgressObserver, configure_logging, stderr_console

    json_lines = outputs.log_format is LogFormat.JSON
    configure_logging(verbose=outputs.verbose, json_lines=json_lines)
    try:
        with signals_raise():
            if sys.stderr.isatty() and not json_lines:
                with ProgressObserver(stderr_console()) as observer:
                    result = run_cycle(config, options, observer, webhook=webhook)
            else:
                result = run_cycle(config, options, LogObserver(), webhook=webhook)
            # Still under the handlers: a signal while the outputs are written or the metrics pushed
            # ends the run with 143/130 like any other, not by Python's default handler.
            problems = _show(result, options, outputs)
    except Interrupted as exc:
        # During discovery, a second signal while the cycle winds down, or during the outputs: once
        # jobs run, the first signal makes the cycle itself stop and report.
        typer.echo(f"Interrupted by {exc}; rows already stored are sent by the next run.", err=True)
        return exc.exit_code
    for problem in problems:
        typer.echo(f"Error: {problem}", err=True)
    code = exit_code(result, fail_on_job_failure=outputs.fail_on_job_failure, dry_run=options.dry_run)
    # A report that could not be written must not hide rows held or undelivered: it ranks below them.
    return 1 if problems and code in (0, NOTHING_TESTED) else code


NOTHING_TESTED = 7


def exit_code(report: CycleReport, *, fail_on_job_failure: bool = False, dry_run: bool = False) -> int:
    """Map a finished cycle to the documented exit code."""
    if report.interrupted is not None:
        return 128 + report.interrupted
    if report.stopped is not None:
        return 1
    if report.held_back is not None:
        return 6
    if fail_on_job_failure and report.totals().failed:
        return 3
    if report.posting and (report.undelivered or report.rows_rejected):
        return 4
    if not report.plan.jobs and not dry_run:
        return NOTHING_TESTED
    return 0


def _show(result: CycleReport, options: RunOptions, outputs: Outputs) -> list[str]:
    """Print the summary and write the files asked for; return what could not be written."""
    from .output.console import render_plan, render_summary, stdout_console
    from .output.junit import to_junit
    from .output.report import to_json

    console = stdout_console()
    if options.dry_run:
        render_plan(result.plan, console)
    else:
        render_summary(result, console)
    problems = []
    if outputs.report is not None:
        problems += _write(outputs.report, (json.dumps(to_json(result), indent=2) + "\n").encode(), "report")
    if outputs.junit is not None:
        problems += _write(outputs.junit, to_junit(result), "JUnit report")
    if outputs.metrics_file is not None or outputs.pushgateway is not None:
        problems += _export_metrics(result, outputs)
    return problems


def _export_metrics(result: CycleReport, outputs: Outputs) -> list[str]:
    from .output import metrics

    problems = []
    if outputs.metrics_file is not None:
        try:
            metrics.write_textfile(outputs.metrics_file, result)
        except OSError as exc:
            problems.append(f"cannot write the metrics file {outputs.metrics_file}: {exc.strerror}")
    if outputs.pushgateway is not None:
        try:
            metrics.push(outputs.pushgateway, result)
        except OSError as exc:  # urllib's errors; the cycle's results stand, so this is only reported
            typer.echo(f"Warning: could not push metrics to {outputs.pushgateway}: {exc}", err=True)
    return problems


def _write(path: Path, data: bytes, what: str) -> list[str]:
    try:
        path.write_bytes(data)
    except OSError as exc:
        return [f"cannot write the {what} to {path}: {exc.strerror}"]
    return []


def main() -> None:
    app()
