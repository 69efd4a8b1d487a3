"""What people see: progress while jobs run, then the summary table. Reads reports, computes nothing.

Every text that came from outside (names, messages, addresses) goes through ``_inert``:
one line, no control characters, no rich markup, bounded length, so a model named
``x[/y]`` or a message full of escape sequences is shown as text and never breaks the
display. Tables longer than ``SCREENFUL`` rows are rolled up on the terminal; ``--report``
keeps every row.
"""

from __future__ import annotations

import json
import logging
import signal
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from ..domain.live import LiveStats
from ..domain.outcome import Outcome
from ..domain.plan import Plan, PlannedJob
from ..domain.results import JobResult
from ..domain.rows import Row, TranscodingRow, labels
from ..domain.scores import Rollup, Score, ScoreKey, key_of, rollup, score_cycle
from ..domain.text import printable
from ..storage.inventory import Inventory
from ..validation import PipelineSummary
from .report import CycleReport

if TYPE_CHECKING:
    from rich.console import Console

# rich is imported where it is used: a cron run logs lines and needs it only for the closing
# table, and importing it up front delayed the first discovery request by tens of milliseconds.

log = logging.getLogger("ai_job_tester")

# A table longer than this is rolled up on the terminal (and in cron mail): 100,000 rows of
# skipped offers are 10 MB nobody reads. Every row stays in --report.
SCREENFUL = 50
# The longest log line: a job's line carries an orchestrator's message (itself cut at 300).
LOG_LINE_LIMIT = 2000


def _inert(text: str, limit: int = 300) -> str:
    """Text from outside as one inert line for a rich table or progress bar."""
    from rich.markup import escape

    return escape(printable(text, limit))

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
    from rich.console import Console

    # Under cron there is no terminal width to ask: use a wide one rather than wrap every row.
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, width=None if sys.stderr.isatty() else 200, highlight=False)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message, and the job's coordinates when there is a job."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "message": printable(record.getMessage(), LOG_LINE_LIMIT),
        }
        for key in JOB_FIELDS:
            if hasattr(record, key):
                value = getattr(record, key)
                document[key] = printable(value) if isinstance(value, str) else value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        line = json.dumps(document, ensure_ascii=False)
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate left (in an exception's text): escape it, never raise
            return json.dumps(document)
        return line


class InertFormatter(logging.Formatter):
    """The text log line, with its message made one inert line whatever its arguments carried."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = printable(record.message, LOG_LINE_LIMIT)
        return super().formatMessage(record)


JOB_FIELDS = ("orchestrator", "pipeline", "model", "outcome", "round_trip_time", "error_code")


def configure_logging(*, verbose: bool = False, json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(InertFormatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def _job_fields(job: PlannedJob) -> dict[str, object]:
    return {"orchestrator": job.orchestrator.address, "pipeline": job.capability, "model": job.model}


def _job_label(job: PlannedJob) -> str:
    """Plain and inert (for log lines); escape it again for rich."""
    return " ".join(printable(part, 200) for part in (job.orchestrator.address, job.capability, job.label))


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
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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
        self._progress.update(self._task, description=_inert(_job_label(job), 1000))

    def job_finished(self, index: int, result: JobResult) -> None:
        self._progress.advance(self._task)


def render_pipelines(pipelines: Sequence[PipelineSummary], console: Console) -> None:
    """Print the configured pipelines as ``validate`` sees them."""
    from rich.table import Table

    table = Table(title=f"{sum(p.not_tested is None for p in pipelines)} pipelines to test")
    for column in ("name", "route", "body", "model field", "test file", "timeout", "tested"):
        table.add_column(column)
    for p in pipelines:
        table.add_row(_inert(p.name), p.route, p.content_type, p.model_field, _inert(str(p.asset or "-")),
                      f"{p.timeout:g} s", "yes" if p.not_tested is None else f"no: {_inert(p.not_tested)}")  # fmt: skip
    console.print(table)


def render_inventory(inventory: Inventory, folder: Path, console: Console) -> None:
    """Print what a state directory holds, owes and had refused."""
    from rich.table import Table

    console.print(f"state directory {folder}")
    for title, rows in (("held by the health gate", inventory.held), ("waiting for delivery", inventory.waiting)):
        table = Table(title=f"{len(rows)} row(s) {title}")
        for column in ("time", "orchestrator", "pipeline", "model", "result", "error"):
            table.add_column(column, overflow="fold")
        for row in rows:
            error = "; ".join(f"{e.error_code} {e.message}" + (f" (×{e.count})" if e.count > 1 else "")
                              for e in row.errors)  # fmt: skip
            pipeline, model = labels(row)
            table.add_row(_when(row.timestamp), _inert(row.orchestrator), _inert(pipeline), _inert(model),
                          _row_result(row), _inert(error, 600))  # fmt: skip
        console.print(table)
    table = Table(title=f"{len(inventory.archived)} row(s) retired unsent (too old to count as current)")
    for column in ("time", "orchestrator", "pipeline", "model"):
        table.add_column(column, overflow="fold")
    for row in inventory.archived:
        pipeline, model = labels(row)
        table.add_row(_when(row.timestamp), _inert(row.orchestrator), _inert(pipeline), _inert(model))
    console.print(table)
    table = Table(title=f"{len(inventory.rejected)} row(s) set aside: rejected by the leaderboard, or dead-lettered")
    for column in ("file", "message"):
        table.add_column(column, overflow="fold")
    for rejected in inventory.rejected:
        table.add_row(_inert(str(rejected.path)), _inert(rejected.message, 600))
    console.print(table)


def _row_result(row: Row) -> str:
    if isinstance(row, TranscodingRow):
        return f"{row.success_rate:.0%} of renditions"
    return "passed" if row.success_rate else "failed"


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def render_plan(plan: Plan, console: Console) -> None:
    """Print what a cycle would run, for ``--dry-run``: every job, or past a screenful the first ones and a roll-up."""
    from rich.table import Table

    jobs = plan.jobs
    title = f"Plan: {len(jobs)} jobs on {len(plan.orchestrators)} orchestrators"
    if len(jobs) > SCREENFUL:
        title += f", the first {SCREENFUL} in the order they run"
    table = Table(title=title)
    for column in ("#", "orchestrator", "service URI", "pipeline", "model", "warm"):
        table.add_column(column)
    for number, job in enumerate(jobs[:SCREENFUL], 1):
        table.add_row(
            str(number),
            _inert(job.orchestrator.address),
            _inert(job.orchestrator.service_uri),
            _inert(job.capability),
            _inert(job.label),
            job.warmth,
        )
    console.print(table)
    if len(jobs) > SCREENFUL:
        console.print(f"… and {len(jobs) - SCREENFUL} more jobs: `--report FILE` lists every one (under `planned`)")
        _render_by_model(((job, None) for job in jobs), console, title="The plan by pipeline and model")
    _render_skipped(plan, console)


def _render_by_model(jobs: Iterable[tuple[PlannedJob, JobResult | None]], console: Console, *, title: str) -> None:
    """One row per pipeline and model: how many jobs, on how many orchestrators, and how they ended."""
    from rich.table import Table

    groups: dict[tuple[str, str], list[tuple[PlannedJob, JobResult | None]]] = defaultdict(list)
    for job, result in jobs:
        groups[(job.capability, job.model)].append((job, result))
    results = any(result is not None for members in groups.values() for _, result in members)
    table = Table(title=title if len(groups) <= SCREENFUL else f"{title}: the {SCREENFUL} largest of {len(groups)}")
    columns = ["pipeline", "model", "jobs", "orchestrators", "warm"]
    columns += ["passed", "failed", "other", "median round trip"] if results else []
    for column in columns:
        table.add_column(column)
    largest = sorted(groups.items(), key=lambda item: -len(item[1]))[:SCREENFUL]
    for (capability, model), members in largest:
        orchestrators = len({job.orchestrator.address for job, _ in members})
        warm = sum(job.warm for job, _ in members)
        cells = [_inert(capability), _inert(model), str(len(members)), str(orchestrators), str(warm)]
        if results:
            outcomes = Counter(result.outcome for _, result in members if result is not None)
            trips = [r.round_trip for _, r in members if r is not None and r.outcome is Outcome.PASSED and r.round_trip]
            other = len(members) - outcomes[Outcome.PASSED] - outcomes[Outcome.FAILED]
            median = f"{statistics.median(trips):.3f} s" if trips else "-"
            cells += [str(outcomes[Outcome.PASSED]), str(outcomes[Outcome.FAILED]), str(other), median]
        table.add_row(*cells)
    console.print(table)


def _render_skipped(plan: Plan, console: Console) -> None:
    from rich.table import Table

    if not plan.skipped:
        return
    if len(plan.skipped) <= SCREENFUL:
        table = Table(title=f"Skipped: {len(plan.skipped)}")
        for column in ("orchestrator", "pipeline", "model", "reason"):
            table.add_column(column)
        for skipped in plan.skipped:
            table.add_row(_inert(skipped.orchestrator), _inert(skipped.capability), _inert(skipped.model),
                          _inert(skipped.reason))  # fmt: skip
        console.print(table)
        return
    # A huge network: count the offers by reason; the report lists each one.
    offers: Counter[str] = Counter()
    orchestrators: dict[str, set[str]] = defaultdict(set)
    for skipped in plan.skipped:
        offers[skipped.reason] += 1
        orchestrators[skipped.reason].add(skipped.orchestrator)
    table = Table(title=f"Skipped: {len(plan.skipped)} offers, by reason (`--report` lists each one)")
    for column in ("reason", "offers", "orchestrators"):
        table.add_column(column)
    for reason, count in offers.most_common(SCREENFUL):
        table.add_row(_inert(reason), str(count), str(len(orchestrators[reason])))
    console.print(table)


def render_summary(report: CycleReport, console: Console) -> None:
    """Print the per-job table, the per-orchestrator roll-up, the skipped offers and the totals."""
    from rich.table import Table

    scores = score_cycle(report.results)
    shown = report.results
    title = f"Region {report.region}: {len(report.results)} jobs"
    if len(report.results) > SCREENFUL:
        # Past a screenful, the jobs that did not pass are what a person needs to read.
        shown = tuple(result for result in report.results if result.outcome is not Outcome.PASSED)[:SCREENFUL]
        title += f"; the first {len(shown)} that did not pass"
        _render_by_model(((r.job, r) for r in report.results), console, title="Jobs by pipeline and model")
    table = Table(title=title)
    for column in ("orchestrator", "pipeline", "model", "warm", "result", "round trip", "score", "error", "posted"):
        # Addresses and numbers never wrap; the error text takes what width is left.
        table.add_column(column, overflow="fold", no_wrap=column in ("orchestrator", "warm", "result", "score"))
    for result in shown:
        job = result.job
        score = scores.get(key_of(result))
        error = " ".join(part for part in (result.verdict.error_code, result.verdict.message) if part)
        table.add_row(
            _inert(job.orchestrator.address), _inert(job.capability), _inert(job.label), job.warmth,
            f"[{_STYLE[result.outcome]}]{result.outcome.value}[/]", _timing(result),
            "-" if score is None else f"{score.score:.3f}", _inert(error, 600), _posted(result),
        )  # fmt: skip
    console.print(table)
    if len(report.results) > SCREENFUL:
        console.print(f"every job of the {len(report.results)} is in `--report FILE` (under `jobs`)")
    _render_rollup(rollup(report.results, scores), console)
    _render_transcoding(report.results, scores, console)
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
    console.print(f"outputs checked for replays {t.outputs_checked}, replayed {t.replays}")
    if t.replays:
        console.print(
            f"[red]{t.replays} job(s) failed REPLAYED_OUTPUT:[/] their output is identical to an earlier job's "
            "for a different request (answered from a cache); each message names the earlier job"
        )
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
        console.print(f"[red]the cycle stopped early:[/] {_inert(report.stopped, 600)}")
    # With one lane, or none left standing, a failed lane's jobs went nowhere: "not run" above says so.
    taken = "; the other lanes took its jobs" if report.lanes > len(report.lane_failures) else ""
    for failure in report.lane_failures:
        console.print(f"[red]{_inert(failure, 600)}[/]{taken}")
    if report.held_back:
        console.print(f"[red]health gate:[/] {_inert(report.held_back, 600)}")
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
        lines.append(f"[red]posting stopped:[/] {_inert(report.posting_stopped, 600)}")
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
    if result.transcode is not None:
        stats = result.transcode
        asked = stats.profiles * stats.segments_sent
        return f"{stats.round_trip:.3f} s ({stats.segments_received}/{asked} renditions)"
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


def _render_transcoding(results: Sequence[JobResult], scores: dict[ScoreKey, Score], console: Console) -> None:
    """One row per orchestrator's stream: the transcoding row's figures and the leaderboard's score of them."""
    from rich.table import Table

    streams = [r for r in results if r.transcode is not None and key_of(r) in scores]
    if not streams:
        return
    title = "Transcoding (the leaderboard's transcoding score over this cycle; times are means per segment)"
    if len(streams) > SCREENFUL:
        streams = sorted(streams, key=lambda r: scores[key_of(r)].score)[:SCREENFUL]
        title += f": the {SCREENFUL} lowest scores (`--report` has every one under `transcoding`)"
    table = Table(title=title)
    columns = ("orchestrator", "segments", "renditions", "success", "segment", "round trip", "upload", "download",
               "transcode", "round-trip score", "score", "errors")  # fmt: skip
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column != "errors")
    for result in streams:
        stats, score = result.transcode, scores[key_of(result)]
        assert stats is not None
        errors = "; ".join(f"{e.code} ×{e.count}" for e in stats.errors) or "-"
        table.add_row(
            _inert(result.job.orchestrator.address), str(stats.segments_sent),
            f"{stats.segments_received}/{stats.profiles * stats.segments_sent}", f"{stats.success_rate:.2f}",
            f"{stats.seg_duration:.3f} s", f"{stats.round_trip:.3f} s", f"{stats.upload:.3f} s",
            f"{stats.download:.3f} s", f"{stats.transcode:.3f} s", f"{score.round_trip_score:.3f}",
            f"{score.score:.3f}", _inert(errors, 600),
        )  # fmt: skip
    console.print(table)


def _render_rollup(rollups: Sequence[Rollup], console: Console) -> None:
    from rich.table import Table

    if not rollups:
        return
    title = "Per orchestrator (the leaderboard's formula over this cycle)"
    if len(rollups) > SCREENFUL:
        rollups = sorted(rollups, key=lambda r: r.mean_score)[:SCREENFUL]
        title += f": the {SCREENFUL} lowest mean scores (`--report` has every one under `orchestrators`)"
    table = Table(title=title)
    for column in ("orchestrator", "models", "jobs", "passed", "mean score"):
        table.add_column(column)
    for r in rollups:
        table.add_row(_inert(r.orchestrator), "warm" if r.warm else "cold", str(r.jobs), str(r.passed),
                      f"{r.mean_score:.3f}")  # fmt: skip
    console.print(table)


def _posted(result: JobResult) -> str:
    if result.delivery is None:
        return "-"
    if result.delivery.held:
        return "[yellow]held[/]"
    return "yes" if result.delivery.delivered else f"[red]no: {_inert(result.delivery.message)}[/]"
