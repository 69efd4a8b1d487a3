"""The score the leaderboard will give this cycle's results, computed the way it does. Pure.

Per pipeline and model: ``median`` is the median round trip of the passing jobs across
all orchestrators; an orchestrator's ``round_trip_score`` is ``0.8 ** (rtt / median)``
(0.8 at the median, less when slower); its ``score`` is
``0.65 * success_rate + 0.35 * round_trip_score``, and 0 when nothing passed.

Transcoding jobs are scored with the leaderboard's transcoding formula instead
(``transcoding_score``): ``round_trip_score = 1 − e^(−seg_duration / round_trip_time)``
(0 when the round trip is 0), ``score = success_rate × round_trip_score``.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from .outcome import Outcome
from .plan import JobKind
from .results import JobResult

SCORE_AT_MEDIAN = 0.8
WEIGHT_SUCCESS = 0.65
WEIGHT_ROUND_TRIP = 0.35

ScoreKey = tuple[str, str, str]
"""(orchestrator, pipeline, model)"""


@dataclass(frozen=True, slots=True)
class Score:
    success_rate: float
    round_trip_score: float
    score: float


@dataclass(frozen=True, slots=True)
class Rollup:
    """One orchestrator's jobs of one temperature (warm or cold models), summed up."""

    orchestrator: str
    warm: bool
    jobs: int
    passed: int
    mean_score: float


def key_of(result: JobResult) -> ScoreKey:
    return (result.job.orchestrator.address, result.job.capability, result.job.model)


def score_cycle(results: Sequence[JobResult]) -> dict[ScoreKey, Score]:
    """Score every passed or failed job; jobs that are never posted are never scored."""
    scored = [r for r in results if r.scored and r.job.kind is not JobKind.TRANSCODING]
    medians = _medians(scored)
    groups: dict[ScoreKey, list[JobResult]] = defaultdict(list)
    for result in scored:
        groups[key_of(result)].append(result)
    scores = {key: _score(group, medians.get(key[1:])) for key, group in groups.items()}
    for result in results:
        if result.scored and result.transcode is not None:
            stats = result.transcode
            scores[key_of(result)] = transcoding_score(stats.success_rate, stats.seg_duration, stats.round_trip)
    return scores


def transcoding_score(success_rate: float, seg_duration: float, round_trip: float) -> Score:
    """The leaderboard's transcoding score of one orchestrator's (averaged) figures."""
    rtt_score = 1 - math.exp(-seg_duration / round_trip) if round_trip > 0 else 0.0
    return Score(success_rate, rtt_score, 0.0 if success_rate == 0 else success_rate * rtt_score)


def rollup(results: Sequence[JobResult], scores: dict[ScoreKey, Score]) -> list[Rollup]:
    """Per orchestrator, warm and cold models apart: jobs, passes, mean score."""
    buckets: dict[tuple[str, bool], list[JobResult]] = defaultdict(list)
    for result in results:
        # Transcoding has a score of its own kind, shown in its own table.
        if key_of(result) in scores and result.job.kind is not JobKind.TRANSCODING:
            buckets[(result.job.orchestrator.address, result.job.warm)].append(result)
    return [
        Rollup(
            orchestrator=orch,
            warm=warm,
            jobs=len(group),
            passed=sum(r.outcome is Outcome.PASSED for r in group),
            mean_score=statistics.fmean(scores[key_of(r)].score for r in group),
        )
        for (orch, warm), group in sorted(buckets.items(), key=lambda item: (item[0][0], not item[0][1]))
    ]


def _medians(scored: Sequence[JobResult]) -> dict[tuple[str, str], float]:
    passing: dict[tuple[str, str], list[float]] = defaultdict(list)
    for result in scored:
        if result.outcome is Outcome.PASSED and result.round_trip is not None:
            passing[(result.job.capability, result.job.model)].append(result.round_trip)
    return {key: statistics.median(rtts) for key, rtts in passing.items()}


def _score(group: Sequence[JobResult], median: float | None) -> Score:
    success = statistics.fmean(1.0 if r.outcome is Outcome.PASSED else 0.0 for r in group)
    mean_rtt = statistics.fmean(r.round_trip or 0.0 for r in group)
    rtt_score = SCORE_AT_MEDIAN ** (mean_rtt / median) if median else 0.0
    total = 0.0 if success == 0 else WEIGHT_SUCCESS * success + WEIGHT_ROUND_TRIP * rtt_score
    return Score(success, rtt_score, total)
