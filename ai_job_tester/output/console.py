"""What people see: progress while jobs run, then the summary table. Reads reports, computes nothing."""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..domain.live import LiveStats
from ..domain.outcome import Outcome
from ..domain.plan import Plan, PlannedJob
from ..domain.results import JobResult
from ..domain.scores import Rollup, key_of, rollup, score_cycle
from ..storage.inventory import Inventory
from ..validation import PipelineSummary
from .report import CycleReport

log = logging.getLogger("ai_job_tester")

_STYLE = {
    Outcome.PASSED: "green",
    Outcome.FAILED: "red",
    Outcome.UNROUTED: "yellow",
    Outcome.REJECTED: "yellow",
    Outcome.NOT_RUN: "dim",
    Outcome.DEFERRED: "dim",
    Outcome.BUSY: "yellow",
}


def stdout_console() -> Console:
    # Under cron there is no terminal width to ask: use a wide one rather than wrap every row.
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


def stderr_console() -> Console:
    return Console(stderr=True, width=None if sys.stderr.isatty() else 200, highlight=False)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message, and the job's coordinates when there is a job."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        for key in JOB_FIELDS:
            if hasattr(record, key):
                document[key] = getattr(record, key)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)


JOB_FIELDS = ("orchestrator", "pipeline", "model", "outcome", "round_trip_time", "error_code")


def configure_logging(*, verbose: bool = False, json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def _job_fields(job: PlannedJob) -> dict[str, object]:
    return {"orchestrator": job.orchestrator.address, "pipeline": job.capability, "model": job.model}


def _job_label(job: PlannedJob) -> str:
    return f"{job.orchestrator.address} {job.capability} {job.label}"


class LogObserver:
    """Plain log lines, one per job: what cron mails and container logs keep."""

    def __init__(self) -> None:
        self._total = 0

    def planned(self, plan: Plan) -> None:
        self._total = len(plan.jobs)
        log.info(
            "planned %d jobs on %d orchestrators (%d offers skipped)",
            len(plan.jobs),
            len(plan.orchestrators),
            len(plan.skipped),
        )

    def job_started(self, index: int, job: PlannedJob) -> None:
        log.debug("job %d/%d started: %s", index + 1, self._total, _job_label(job), extra=_job_fields(job))

    def job_finished(self, index: int, result: JobResult) -> None:
        rtt = f"{result.round_trip:.3f}s" if result.round_trip is not None else "-"
        detail = f" {result.verdict.error_code or ''} {result.verdict.message}".rstrip()
        post = ""
        if result.delivery is not None and not result.delivery.delivered and not result.delivery.queued:
            post = f" (not posted: {result.delivery.message})"
        extra = {
            **_job_fields(result.job),
            "outcome": result.outcome.value,
            "round_trip_time": result.round_trip,
            "error_code": result.verdict.error_code,
        }
        log.info(
            "job %d/%d %s %s %s%s%s",
            index + 1,
            self._total,
            result.outcome.value,
            _job_label(result.job),
            rtt,
            detail,
            post,
            extra=extra,
        )


class ProgressObserver:
    """A rich progress bar on a terminal; use as a context manager around the cycle."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("discovering", total=None)

    def __enter__(self) -> ProgressObserver:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def planned(self, plan: Plan) -> None:
        self._progress.update(self._task, total=len(plan.jobs), description="testing")

    def job_started(self, index: int, job: PlannedJob) -> None:
        self._progress.update(self._task, description=_job_label(job))

    def job_finished(self, index: int, result: JobResult) -> None:
        self._progress.advance(self._task)


def render_pipelines(pipelines: Sequence[PipelineSummary], console: Console) -> None:
    """Print the configured pipelines as ``validate`` sees them."""
    table = Table(title=f"{sum(p.tested for p in pipelines)} pipelines to test")
    for column in ("name", "route", "body", "model field", "test file", "timeout", "tested"):
        table.add_column(column)
    for p in pipelines:
        table.add_row(escape(p.name), p.route, p.content_type, p.model_field, escape(str(p.asset or "-")),
                      f"{p.timeout:g} s", "yes" if p.tested else "no: live video needs a liveVideo block")  # fmt: skip
    console.print(table)


def render_inventory(inventory: Inventory, folder: Path, console: Console) -> None:
    """Print what a state directory holds, owes and had refused."""
    console.print(f"state directory {folder}")
    for title, rows in (("held by the health gate", inventory.held), ("waiting for delivery", inventory.waiting)):
        table = Table(title=f"{len(rows)} row(s) {title}")
        for column in ("time", "orchestrator", "pipeline", "model", "result", "error"):
            table.add_column(column, overflow="fold")
        for row in rows:
            error = "; ".join(f"{e.error_code} {e.message}" for e in row.errors)
            table.add_row(_when(row.timestamp), row.orchestrator, escape(row.pipeline), escape(row.model),
                          "passed" if row.success_rate else "failed", escape(error))  # fmt: skip
        console.print(table)
    table = Table(title=f"{len(inventory.archived)} row(s) retired unsent (too old to count as current)")
    for column in ("time", "orchestrator", "pipeline", "model"):
        table.add_column(column, overflow="fold")
    for row in inventory.archived:
        table.add_row(_when(row.timestamp), row.orchestrator, escape(row.pipeline), escape(row.model))
    console.print(table)
    table = Table(title=f"{len(inventory.rejected)} row(s) set aside: rejected by the leaderboard, or dead-lettered")
    for column in ("file", "message"):
        table.add_column(column, overflow="fold")
    for rejected in inventory.rejected:
        table.add_row(escape(str(rejected.path)), escape(rejected.message))
    console.print(table)


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def render_plan(plan: Plan, console: Console) -> None:
    """Print what a cycle would run, for ``--dry-run``."""
    table = Table(title=f"Plan: {len(plan.jobs)} jobs on {len(plan.orchestrators)} orchestrators")
    for column in ("#", "orchestrator", "service URI", "pipeline", "model", "warm"):
        table.add_column(column)
    for number, job in enumerate(plan.jobs, 1):
        table.add_row(
            str(number),
            job.orchestrator.address,
            escape(job.orchestrator.service_uri),
            escape(job.capability),
            escape(job.label),
            "warm" if job.warm else "cold",
        )
    console.print(table)
    _render_skipped(plan, console)


def _render_skipped(plan: Plan, console: Console) -> None:
    if not plan.skipped:
        return
    table = Table(title=f"Skipped: {len(plan.skipped)}")
    for column in ("orchestrator", "pipeline", "model", "reason"):
        table.add_column(column)
    for skipped in plan.skipped:
        table.add_row(skipped.orchestrator, escape(skipped.capability), escape(skipped.model), skipped.reason)
    console.print(table)


def render_summary(report: CycleReport, console: Console) -> None:
    """Print the per-job table, the per-orchestrator roll-up, the skipped offers and the totals."""
    scores = score_cycle(report.results)
    table = Table(title=f"Region {report.region}: {len(report.results)} jobs")
    for column in ("orchestrator", "pipeline", "model", "warm", "result", "round trip", "score", "error", "posted"):
        # Addresses and numbers never wrap; the error text takes what width is left.
        table.add_column(column, overflow="fold", no_wrap=column in ("orchestrator", "warm", "result", "score"))
    for result in report.results:
        job = result.job
        score = scores.get(key_of(result))
        error = " ".join(part for part in (result.verdict.error_code, result.verdict.message) if part)
        table.add_row(
            job.orchestrator.address, escape(job.capability), escape(job.label), "warm" if job.warm else "cold",
            f"[{_STYLE[result.outcome]}]{result.outcome.value}[/]", _timing(result),
            "-" if score is None else f"{score.score:.3f}", escape(error), _posted(result),
        )  # fmt: skip
    console.print(table)
    _render_rollup(rollup(report.results, scores), console)
    _render_skipped(report.plan, console)
    t = report.totals()
    console.print(
        f"expected {t.expected}, run {t.run}, passed {t.passed}, failed {t.failed}, tester errors "
        f"{t.tester_errors} (unrouted {t.unrouted}, rejected {t.rejected}, not run {t.not_run}), skipped {t.skipped}"
        + (f", deferred {t.deferred} (time budget spent; they run first next cycle)" if t.deferred else "")
        + (f", busy {t.busy} (live orchestrators full through every retry; not scored)" if t.busy else "")
    )
    for line in _delivery_lines(report):
        console.print(line)
    if t.unrouted:
        console.print(
            f"[yellow]{t.unrouted} job(s) unrouted and not posted:[/] "
            "the gateway did not ask the webhook; is it in tester mode? (see the README)"
        )
    if t.rejected:
        console.print(
            f"[yellow]{t.rejected} job(s) rejected by the gateway before routing and not posted:[/] "
            "the request or the config is at fault, not the orchestrator"
        )
    if report.stopped:
        console.print(f"[red]the cycle stopped early:[/] {escape(report.stopped)}")
    for failure in report.lane_failures:
        console.print(f"[red]{escape(failure)}[/]; the other lanes took its jobs")
    if report.held_back:
        console.print(f"[red]health gate:[/] {escape(report.held_back)}")
    if report.interrupted is not None:
        console.print(f"[red]interrupted by {signal.Signals(report.interrupted).name}:[/] partial results above")


def _delivery_lines(report: CycleReport) -> list[str]:
    if not report.posting:
        return ["results were not posted (--no-post)"]
    t = report.totals()
    lines = [f"posted {t.posted} of {t.passed + t.failed} results to the leaderboard"]
    if t.held:
        lines.append(f"[red]{t.held} failure row(s) held by the health gate[/] (see `ai-job-tester outbox`)")
    if report.earlier_rows.delivered:
        lines.append(f"delivered {report.earlier_rows.delivered} row(s) left by earlier runs first")
    if report.late_rows.delivered:
        lines.append(f"delivered {report.late_rows.delivered} row(s) on the closing retry")
    if report.posting_stopped:
        lines.append(f"[red]posting stopped:[/] {escape(report.posting_stopped)}")
    if report.rows_rejected:
        lines.append(
            f"[red]{report.rows_rejected} row(s) rejected by the leaderboard (HTTP 400)[/]: "
            "see rejected/ in the state directory"
        )
    if report.retired:
        lines.append(f"[yellow]{report.retired} row(s) too old to count as current were retired[/] to archive.jsonl")
    if report.undelivered:
        lines.append(f"[red]{report.undelivered} row(s) wait in the outbox[/] and will be sent first by the next run")
    return lines


def _timing(result: JobResult) -> str:
    if result.live is not None:
        return _live_timing(result.live)
    if result.round_trip is None:
        return "-"
    parts = [f"{result.round_trip:.3f} s"]
    if result.time_to_first_token is not None:
        parts.append(f"first token {result.time_to_first_token:.3f} s")
    if result.tokens_per_second is not None:
        parts.append(f"{result.tokens_per_second:.0f} tok/s")
    if result.output_check_seconds is not None:
        parts.append(f"+{result.output_check_seconds:.3f} s fetch")
    return parts[0] if len(parts) == 1 else f"{parts[0]} ({', '.join(parts[1:])})"


def _live_timing(stats: LiveStats) -> str:
    first = "-" if stats.time_to_first_frame is None else f"{stats.time_to_first_frame:.2f} s"
    fps = "-" if stats.fps is None else f"{stats.fps:.1f}"
    confirmed = {True: "prompt confirmed", False: "prompt NOT confirmed", None: "prompt unconfirmed"}[stats.confirmed]
    return f"first frame {first}, {fps} fps, {stats.frames} frames, live score {stats.score:.2f}, {confirmed}"


def _render_rollup(rollups: Sequence[Rollup], console: Console) -> None:
    if not rollups:
        return
    table = Table(title="Per orchestrator (the leaderboard's formula over this cycle)")
    for column in ("orchestrator", "models", "jobs", "passed", "mean score"):
        table.add_column(column)
    for r in rollups:
        table.add_row(r.orchestrator, "warm" if r.warm else "cold", str(r.jobs), str(r.passed), f"{r.mean_score:.3f}")
    console.print(table)


def _posted(result: JobResult) -> str:
    if result.delivery is None:
        return "-"
    if result.delivery.held:
        return "[yellow]held[/]"
    return "yes" if result.delivery.delivered else f"[red]no: {escape(result.delivery.message)}[/]"
