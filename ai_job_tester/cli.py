"""The command line: parse options, call the library, turn its errors into exit codes.

Exit codes: 0 the cycle completed (orchestrator failures are data, not errors);
1 tester error; 2 usage or config error; 130 interrupted.
"""

from __future__ import annotations

import json
import sys
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
    verbose: VerboseOption = False,
) -> None:
    """Run one test cycle against the gateway in CONFIG."""
    from .config import load_config
    from .cycle import RunOptions
    from .plan import Filters

    filters = Filters(tuple(orchestrator or ()), tuple(pipeline or ()), tuple(model or ()))
    options = RunOptions(filters=filters, dry_run=dry_run, post=not no_post)
    try:
        loaded = load_config(config)
        code = _execute(loaded, options, report_path=report, verbose=verbose)
    except TesterError as exc:
        raise _fail(exc) from None
    raise typer.Exit(code=code)


@app.command()
def demo(report: ReportOption = None, verbose: VerboseOption = False) -> None:
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
            code = _execute(config, RunOptions(), report_path=report, verbose=verbose, webhook=webhook)
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

    configure_logging(verbose=verbose)
    try:
        if sys.stderr.isatty():
            with ProgressObserver(stderr_console()) as observer:
                result = run_cycle(config, options, observer, webhook=webhook)
        else:
            result = run_cycle(config, options, LogObserver(), webhook=webhook)
    except KeyboardInterrupt:
        # The webhook is already closed; the job under way is abandoned and not posted.
        typer.echo("Interrupted: the job under way was not posted.", err=True)
        raise typer.Exit(code=130) from None
    _show(result, options, report_path)
    return 1 if result.stopped else 0


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
