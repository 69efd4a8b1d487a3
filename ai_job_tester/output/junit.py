"""The cycle as JUnit XML, for CI systems: a suite per orchestrator, a test case per job. Pure."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from datetime import UTC, datetime

from ..domain.outcome import Outcome
from ..domain.plan import SkippedOffer
from ..domain.results import JobResult
from ..domain.text import printable
from .report import CycleReport


def to_junit(report: CycleReport) -> bytes:
    """Return the report as a JUnit XML document.

    Failed jobs are failures; unrouted, rejected and not-run jobs are errors (the tester's
    side); offers the cycle did not test are skipped test cases, one per offer up to
    ``SKIPPED_LISTED``, past that one per reason with the count (the document then grows
    with the jobs run, not with everything a huge network offers; ``--report`` lists each).
    """
    by_orchestrator: dict[str, list[JobResult]] = defaultdict(list)
    skipped: dict[str, list[SkippedOffer]] = defaultdict(list)
    for result in report.results:
        by_orchestrator[result.job.orchestrator.address].append(result)
    rolled_up = len(report.plan.skipped) > SKIPPED_LISTED
    for offer in () if rolled_up else report.plan.skipped:
        skipped[offer.orchestrator].append(offer)
    root = ET.Element("testsuites", name=f"ai-job-tester {report.region}")
    stamp = datetime.fromtimestamp(report.started_at, UTC).isoformat(timespec="seconds")
    if rolled_up:
        _skipped_by_reason(root, report.plan.skipped, stamp)
    for address in dict.fromkeys([*by_orchestrator, *skipped]):
        suite = ET.SubElement(root, "testsuite", name=_text(address), timestamp=stamp)
        for result in by_orchestrator.get(address, []):
            _case(suite, result)
        for offer in skipped.get(address, []):
            name = _text(f"{offer.capability} / {offer.model}")
            case = ET.SubElement(suite, "testcase", classname=_text(address), name=name)
            ET.SubElement(case, "skipped", message=_text(offer.reason))
        _count(suite)
    _count(root)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


SKIPPED_LISTED = 50


def _text(text: str, limit: int = 300) -> str:
    # XML 1.0 cannot hold NUL, most controls or a lone surrogate (ElementTree would write
    # a broken file or raise): names and messages from outside go in as one inert line.
    return printable(text, limit)


def _skipped_by_reason(root: ET.Element, offers: tuple[SkippedOffer, ...], stamp: str) -> None:
    suite = ET.SubElement(root, "testsuite", name="skipped offers", timestamp=stamp)
    for reason, count in Counter(offer.reason for offer in offers).most_common():
        case = ET.SubElement(suite, "testcase", classname="skipped offers", name=reason)
        ET.SubElement(case, "skipped", message=f"{count} offers: {reason} (the --report file lists each one)")
    _count(suite)


def _case(suite: ET.Element, result: JobResult) -> None:
    job = result.job
    name = _text(f"{job.capability} / {job.label}" + ("" if job.warmth == "-" else f" ({job.warmth})"))
    case = ET.SubElement(
        suite, "testcase", classname=_text(job.orchestrator.address), name=name, time=f"{result.round_trip or 0:.3f}"
    )
    verdict = result.verdict
    message = _text(" ".join(part for part in (verdict.error_code, verdict.message) if part), 2000)
    if result.outcome is Outcome.FAILED:
        ET.SubElement(case, "failure", message=message, type=verdict.error_code or "FAILED").text = message
    elif result.outcome in (Outcome.DEFERRED, Outcome.BUSY):
        ET.SubElement(case, "skipped", message=message)
    elif result.outcome is not Outcome.PASSED:
        ET.SubElement(case, "error", message=message, type=result.outcome.value).text = message


def _count(element: ET.Element) -> None:
    cases = list(element.iter("testcase"))
    element.set("tests", str(len(cases)))
    for kind, attribute in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        element.set(attribute, str(sum(1 for case in cases if case.find(kind) is not None)))
    element.set("time", f"{sum(float(case.get('time', '0')) for case in cases):.3f}")
