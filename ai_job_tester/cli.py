"""The command line: parse options, call the library, turn its errors into exit codes.

Exit codes: 0 the cycle completed (orchestrator failures are data, not errors);
1 tester error; 2 usage or config error; 4 rows left undelivered; 5 another cycle
holds the lock; 130 SIGINT; 143 SIGTERM.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .errors import TesterError

if TYPE_CHECKING:
    from .config import Config
    from .cycle import RunOptions
    from .report import CycleReport
    from .webhook import Webhook

app = typer.Typer(
    help="Test every orchestrator of a Livepeer AI gateway and post the results to the leaderboard.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path, typer.Option("-f", "--config", help="The config file (the Go tester's format is accepted unchanged).")
]
ReportOption = Annotated[
    Optional[Path], typer.Option("--report", help="Write the cycle's JSON report to this file.", dir_okay=False)
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log each job as it starts, too.")]
StateDirOption = Annotated[
    Optional[Path],
    typer.Option("--state-dir", help="Where undelivered rows and the lock live (overrides stateDir).", file_okay=False),
]


def _fail(exc: TesterError) -> typer.Exit:
    typer.echo(f"Error: {exc}", err=True)
    return typer.Exit(code=exc.exit_code)


@app.command()
def run(
    config: ConfigOption = Path("configs/config.json"),
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
    report: ReportOption = None,
    state_dir: StateDirOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Run one test cycle against the gateway in CONFIG."""
    from .config import load_config
    from .cycle import RunOptions
    from .plan import Filters

    filters = Filters(tuple(orchestrator or ()), tuple(pipeline or ()), tuple(model or ()))
    options = RunOptions(filters=filters, dry_run=dry_run, post=not no_post, state_dir=state_dir)
    try:
        loaded = load_config(config)
        code = _execute(loaded, options, report_path=report, verbose=verbose)
    except TesterError as exc:
        raise _fail(exc) from None
    raise typer.Exit(code=code)


@app.command()
def demo(report: ReportOption = None, state_dir: StateDirOption = None, verbose: VerboseOption = False) -> None:
    """Run a full cycle against the built-in simulated network: no gateway needed."""
    from .config import parse_config
    from .console import stdout_console
    from .cycle import RunOptions
    from .sandbox import SimNetwork
    from .webhook import Webhook

    try:
        with SimNetwork() as network:
            webhook = Webhook.bind("127.0.0.1", 0)
            raw = network.tester_config(webhook_port=webhook.port)
            config = parse_config(raw, source=Path("<simulated network>"))
            # The demo's rows go to the simulated leaderboard: keep them apart from a real outbox.
            with tempfile.TemporaryDirectory(prefix="ai-job-tester-demo-") as scratch:
                options = RunOptions(state_dir=state_dir or Path(scratch))
                code = _execute(config, options, report_path=report, verbose=verbose, webhook=webhook)
            stdout_console().print(
                f"The simulated leaderboard accepted {len(network.leaderboard.rows)} rows "
                f"and rejected {len(network.leaderboard.rejected)}."
            )
    except TesterError as exc:
        raise _fail(exc) from None
    raise typer.Exit(code=code)


def _execute(
    config: Config,
    options: RunOptions,
    *,
    report_path: Path | None,
    verbose: bool,
    webhook: Webhook | None = None,
) -> int:
    from .console import LogObserver, ProgressObserver, configure_logging, stderr_console
    from .cycle import run_cycle
    from .interrupts import Interrupted, signals_raise

    configure_logging(verbose=verbose)
    try:
        with signals_raise():
            if sys.stderr.isatty():
                with ProgressObserver(stderr_console()) as observer:
                    result = run_cycle(config, options, observer, webhook=webhook)
            else:
                result = run_cycle(config, options, LogObserver(), webhook=webhook)
    except Interrupted as exc:
        # Only before the first job: once jobs run, the cycle itself stops and reports.
        typer.echo(f"Interrupted by {exc} before any job ran; nothing was sent.", err=True)
        return exc.exit_code
    _show(result, options, report_path)
    return exit_code(result)


def exit_code(report: CycleReport) -> int:
    """Map a finished cycle to the documented exit code."""
    if report.interrupted is not None:
        return 128 + report.interrupted
    if report.stopped is not None:
        return 1
    if report.posting and (report.undelivered or report.rows_rejected):
        return 4
    return 0


def _show(result: CycleReport, options: RunOptions, report_path: Path | None) -> None:
    from .console import render_plan, render_summary, stdout_console
    from .report import to_json

    console = stdout_console()
    if options.dry_run:
        render_plan(result.plan, console)
    else:
        render_summary(result, console)
    if report_path is not None:
        try:
            report_path.write_text(json.dumps(to_json(result), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise TesterError(f"cannot write the report to {report_path}: {exc.strerror}") from None


def main() -> None:
    app()
