"""The cycle's results as Prometheus metrics: a textfile for node_exporter, or a push to a Pushgateway.

Built with the official client library; names follow Prometheus conventions (base units,
``_seconds``; gauges, since each cycle replaces the last one's values, except the replay
counters, whose tally the state directory keeps).
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, push_to_gateway, write_to_textfile

from ..domain.outcome import Outcome
from ..domain.scores import key_of, score_cycle
from ..network.deadline import within
from .report import CycleReport

JOB_LABELS = ("region", "orchestrator", "pipeline", "model")

PUSH_DEADLINE_SECONDS = 15.0
"""The whole push, connect to reply: the client's own timeout bounds each read, so a dripping
Pushgateway would hold the process (and the cycle lock) for ever after the summary."""


def registry_for(report: CycleReport) -> CollectorRegistry:
    """Return a fresh registry holding this cycle's metrics."""
    registry = CollectorRegistry()
    success = Gauge("ai_job_tester_job_success", "1 if the job passed, 0 if it failed.", JOB_LABELS, registry=registry)
    round_trip = Gauge(
        "ai_job_tester_job_round_trip_seconds", "The job's measured round trip.", JOB_LABELS, registry=registry
    )
    warm = Gauge("ai_job_tester_job_model_warm", "1 if the model was warm.", JOB_LABELS, registry=registry)
    for result in report.results:
        if not result.scored or result.round_trip is None:
            continue  # unrouted, rejected or not run: nothing to say about the orchestrator
        labels = (report.region, result.job.orchestrator.address, result.job.capability, result.job.model)
        success.labels(*labels).set(1 if result.outcome is Outcome.PASSED else 0)
        round_trip.labels(*labels).set(result.round_trip)
        warm.labels(*labels).set(1 if result.job.warm else 0)
    _transcoding(report, registry)
    jobs = Gauge("ai_job_tester_cycle_jobs", "Jobs of the last cycle by outcome.", ("region", "outcome"),
                 registry=registry)  # fmt: skip
    counts = {outcome: 0 for outcome in Outcome}
    for result in report.results:
        counts[result.outcome] += 1
    for outcome, count in counts.items():
        jobs.labels(report.region, outcome.value.replace(" ", "_")).set(count)
    rows = Gauge("ai_job_tester_cycle_rows", "Rows of the last run by what became of them (beyond those posted).",
                 ("region", "state"), registry=registry)  # fmt: skip
    rows.labels(report.region, "undelivered").set(report.undelivered)  # still waiting in the outbox
    rows.labels(report.region, "set_aside").set(report.rows_rejected)  # rejected or dead-lettered this run
    rows.labels(report.region, "retired").set(report.retired)  # too old to post as current
    totals = report.totals()
    outputs = Gauge("ai_job_tester_cycle_outputs", "Outputs of the last cycle compared for replays, and replays found.",
                    ("region", "state"), registry=registry)  # fmt: skip
    outputs.labels(report.region, "checked").set(totals.outputs_checked)
    outputs.labels(report.region, "replayed").set(totals.replays)
    # Real counters: the tally lives in the state directory, so it only grows from cycle to cycle.
    checked = Counter("ai_job_tester_outputs_checked", "Outputs compared for replays, over the state directory's life.",
                      ("region",), registry=registry)  # fmt: skip
    checked.labels(report.region).inc(report.replay_tally.checked)
    replayed = Counter("ai_job_tester_replayed_outputs", "Outputs found replayed (REPLAYED_OUTPUT), over the state "
                       "directory's life.", ("region",), registry=registry)  # fmt: skip
    replayed.labels(report.region).inc(report.replay_tally.replayed)
    Gauge("ai_job_tester_cycle_duration_seconds", "How long the last cycle took.", ("region",),
          registry=registry).labels(report.region).set(report.finished_at - report.started_at)  # fmt: skip
    Gauge("ai_job_tester_cycle_last_finished_timestamp_seconds", "When the last cycle finished (Unix time).",
          ("region",), registry=registry).labels(report.region).set(report.finished_at)  # fmt: skip
    return registry


def _transcoding(report: CycleReport, registry: CollectorRegistry) -> None:
    """A transcoding job's rate is a share of renditions, not 1 or 0: it gets gauges of its own."""
    labels = ("region", "orchestrator")
    rate = Gauge("ai_job_tester_transcoding_success_rate", "Renditions received over renditions asked for.",
                 labels, registry=registry)  # fmt: skip
    rtt = Gauge("ai_job_tester_transcoding_round_trip_seconds", "Mean round trip of a segment with renditions.",
                labels, registry=registry)  # fmt: skip
    score = Gauge("ai_job_tester_transcoding_score", "The leaderboard's transcoding score of this cycle's row.",
                  labels, registry=registry)  # fmt: skip
    scores = score_cycle(report.results)
    for result in report.results:
        stats = result.transcode
        if stats is None or not result.scored:
            continue
        which = (report.region, result.job.orchestrator.address)
        rate.labels(*which).set(stats.success_rate)
        rtt.labels(*which).set(stats.round_trip)
        score.labels(*which).set(scores[key_of(result)].score)


def write_textfile(path: Path, report: CycleReport) -> None:
    """Write the metrics atomically (a temporary file renamed into place)."""
    write_to_textfile(str(path), registry_for(report))


def push(url: str, report: CycleReport) -> None:
    """Replace this region's metrics on a Pushgateway (job ``ai_job_tester_<region>``) within the deadline.

    A deadline miss raises ``DeadlineExceeded``, an ``OSError`` like urllib's own errors.
    """
    registry = registry_for(report)
    within(
        PUSH_DEADLINE_SECONDS,
        lambda: push_to_gateway(url, job=f"ai_job_tester_{report.region}", registry=registry,
                                timeout=PUSH_DEADLINE_SECONDS),
        what="the metrics push",
    )  # fmt: skip
