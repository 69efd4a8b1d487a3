"""What reaches a terminal, a log line or a JUnit file: inert whatever a gateway sends, and bounded on huge networks."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console

from ai_job_tester.domain.discovery import Orchestrator
from ai_job_tester.domain.outcome import Outcome, Verdict
from ai_job_tester.domain.plan import Pipeline, Plan, PlannedJob, SkippedOffer
from ai_job_tester.domain.results import JobResult
from ai_job_tester.output.console import (
    SCREENFUL,
    InertFormatter,
    JsonFormatter,
    LogObserver,
    ProgressObserver,
    configure_logging,
    render_plan,
    render_summary,
)
from ai_job_tester.output.junit import to_junit
from ai_job_tester.output.report import CycleReport, to_json

PIPELINE = Pipeline("Text to image", "text-to-image", "application/json", {}, "model_id", "image", None, 120.0)
HOSTILE = {
    "nul": "model\x00name",
    "lone surrogate": "model\ud800name",
    "ansi escape": "model\x1b[31mred\x1b[0m\x1b]0;title\x07",
    "rich markup": "x[/y] [bold]b[/] [/]",
    "newlines": "model\nINFO forged log line\r\n",
    "a megabyte": "m" * 1_000_000,
}


def job(n: int, model: str = "m", capability: str = "Text to image") -> PlannedJob:
    return PlannedJob(Orchestrator(f"0x{n:040x}", f"https://o{n}.sim:8935"), capability, model, n % 2 == 0, PIPELINE)


def report(
    results: list[JobResult], skipped: tuple[SkippedOffer, ...] = (), plan_jobs: int | None = None
) -> CycleReport:
    jobs = tuple(r.job for r in results) if plan_jobs is None else tuple(job(n) for n in range(plan_jobs))
    plan = Plan(tuple({j.orchestrator for j in jobs}), jobs, skipped)
    return CycleReport("FRA", 0.0, 1.0, plan, tuple(results), posting=False)


def failed(planned: PlannedJob, message: str = "boom") -> JobResult:
    return JobResult(planned, Verdict(Outcome.FAILED, "500", message), 0, round_trip=0.1, status=500)


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    # No colours of rich's own: any escape sequence in the output would be the sender's.
    return Console(file=out, width=200, color_system=None), out


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_names_and_messages_from_outside_are_shown_as_inert_text(text: str) -> None:
    hostile = job(1, model=text, capability=text)
    cycle = report([failed(hostile, message=text)], skipped=(SkippedOffer("0x1", text, text, "no pipeline"),))
    terminal, out = console()
    render_summary(cycle, terminal)
    render_plan(cycle.plan, terminal)
    shown = out.getvalue()
    assert "\x00" not in shown and "\x07" not in shown and "\ud800" not in shown
    assert "\x1b" not in shown
    assert len(shown) < 50_000  # a megabyte name is cut, not printed
    ET.fromstring(to_junit(cycle))  # still well-formed XML


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_the_progress_bar_survives_any_model_name(text: str) -> None:
    terminal, _ = console()
    with ProgressObserver(terminal) as progress:
        progress.job_started(0, job(1, model=text, capability=text))  # "x[/y]" used to raise MarkupError


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_log_lines_stay_one_line_and_json_stays_encodable(text: str) -> None:
    record = logging.LogRecord("ai_job_tester", logging.INFO, __file__, 1, "job %s: %s", (text, text), None)
    record.model = text
    line = InertFormatter("%(levelname)s %(message)s").format(record)
    assert "\n" not in line and "\x1b" not in line and len(line) <= 2100
    document = JsonFormatter().format(record)
    document.encode("utf-8")  # a lone surrogate used to make the handler raise
    assert "\n" not in document and json.loads(document)["model"]


def test_a_lone_surrogate_in_an_exception_still_makes_a_json_line() -> None:
    try:
        raise ValueError("bad \ud800 thing")
    except ValueError:
        import sys

        record = logging.LogRecord("ai_job_tester", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    json.loads(JsonFormatter().format(record).encode("utf-8"))


@pytest.mark.parametrize("json_lines", [False, True], ids=["text", "json"])
def test_the_log_observer_writes_hostile_jobs_one_line_each(
    capsys: pytest.CaptureFixture[str], json_lines: bool
) -> None:
    configure_logging(json_lines=json_lines)
    try:
        observer = LogObserver()
        for text in HOSTILE.values():
            observer.job_finished(0, failed(job(1, model=text), message=text))
    finally:
        logger = logging.getLogger("ai_job_tester")
        logger.handlers.clear()
        logger.propagate = True
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == len(HOSTILE)  # no "--- Logging error ---", no forged extra line
    assert not any("\x1b" in line or "\x00" in line for line in lines)


def test_a_huge_network_is_rolled_up_on_the_terminal_and_listed_in_the_report() -> None:
    skipped = tuple(SkippedOffer(f"0x{n:040x}", "Unknown", f"m{n}", "no pipeline with this route in the config")
                    for n in range(100_000))  # fmt: skip
    results = [failed(job(n, model=f"model-{n % 10}")) for n in range(10_000)]
    cycle = report(results, skipped)
    terminal, out = console()
    render_summary(cycle, terminal)
    shown = out.getvalue()
    assert len(shown.splitlines()) < 4 * SCREENFUL + 100  # a few screenfuls, not 110,000 rows
    assert "100000" in shown and "no pipeline with this route" in shown  # counted by reason
    assert "model-3" in shown  # the roll-up by pipeline and model
    document = to_json(cycle)
    assert len(document["jobs"]) == 10_000 and len(document["skipped"]) == 100_000


def test_a_huge_dry_run_shows_a_screenful_and_the_report_lists_the_whole_plan() -> None:
    cycle = report([], plan_jobs=10_000)
    terminal, out = console()
    render_plan(cycle.plan, terminal)
    assert len(out.getvalue().splitlines()) < 2 * SCREENFUL + 40
    assert "9950 more jobs" in out.getvalue()
    assert len(to_json(cycle)["planned"]) == 10_000


def test_junit_stays_proportionate_to_the_jobs_run() -> None:
    skipped = tuple(SkippedOffer(f"0x{n:040x}", "Unknown", f"m{n}", "no pipeline with this route in the config")
                    for n in range(100_000))  # fmt: skip
    document = to_junit(report([failed(job(1))], skipped))
    assert len(document) < 10_000  # was 33 MB for a real 100,000-offer network
    root = ET.fromstring(document)
    assert root.get("skipped") == "1" and "100000 offers" in document.decode()


def test_a_few_skipped_offers_are_still_listed_one_by_one_in_junit() -> None:
    skipped = tuple(SkippedOffer(f"0x{n:040x}", "Unknown", f"m{n}", "no pipeline") for n in range(3))
    root = ET.fromstring(to_junit(report([failed(job(1))], skipped)))
    assert root.get("skipped") == "3"


@pytest.mark.parametrize(
    ("lanes", "failures", "taken"),
    [(1, 1, False), (2, 1, True), (3, 2, True), (2, 2, False)],
    ids=["the only lane", "one of two", "two of three", "every lane"],
)
def test_the_summary_says_other_lanes_took_a_failed_lanes_jobs_only_when_some_were_left(
    lanes: int, failures: int, taken: bool
) -> None:
    cycle = dataclasses.replace(
        report([failed(job(1))]),
        lanes=lanes,
        lane_failures=tuple(f"lane {n}: stopped by an unexpected error: RuntimeError: bug" for n in range(failures)),
    )
    terminal, out = console()
    render_summary(cycle, terminal)
    shown = out.getvalue()
    assert shown.count("stopped by an unexpected error") == failures
    assert ("the other lanes took its jobs" in shown) is taken
