"""Delivery policy against the simulated leaderboard: a bad row never blocks the others; a late row is retired."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from ai_job_tester.cycle.courier import DEAD_AFTER, Courier
from ai_job_tester.domain.rows import LeaderboardRow
from ai_job_tester.network.leaderboard import Leaderboard
from ai_job_tester.sandbox import SimLeaderboard
from ai_job_tester.storage.inventory import read_inventory
from ai_job_tester.storage.outbox import ARCHIVE, Outbox

SECRET = "k"


def row(model: str, *, age: float = 0.0) -> LeaderboardRow:
    return LeaderboardRow(
        region="FRA", orchestrator="0x" + "a" * 40, success_rate=1.0, round_trip_time=0.5, errors=[],
        timestamp=int(time.time() - age), model=model, pipeline="Text to image", model_is_warm=True,
        input_parameters="{}", response_payload="{}",
    )  # fmt: skip


def run(board: SimLeaderboard, state: Path, *new: LeaderboardRow, max_age: float | None = None) -> Courier:
    """One run's delivery: earlier rows first, then this run's, then one closing retry."""
    with httpx.Client() as client, Outbox(state) as outbox:
        courier = Courier(Leaderboard(client, board.post_stats_url, SecretStr(SECRET)), outbox, max_age=max_age)
        courier.start()
        courier.queue_waiting("earlier")
        for each in new:
            courier.send(each)
        assert courier.drain(time.monotonic() + 20)
        if courier.stopped is None and courier.queue_waiting("late"):
            assert courier.drain(time.monotonic() + 20)
        courier.close()
        return courier


def test_a_row_the_leaderboard_keeps_refusing_is_dead_lettered_and_never_blocks_the_others(
    board: SimLeaderboard, tmp_path: Path
) -> None:
    # Three rows the database refuses for ever (a constraint), among good ones.
    board.refuse_models = {"p0", "p1", "p2"}
    run(board, tmp_path, *(row(f"p{i}") for i in range(3)), row("good-1"))
    assert [r.model for r in board.rows] == ["good-1"]
    for cycle in range(2, 2 + DEAD_AFTER):
        courier = run(board, tmp_path, row(f"good-{cycle}"))
        assert courier.stopped is None  # refused rows go to the back; they never stop posting
    assert sorted(r.model for r in board.rows) == [f"good-{i}" for i in range(1, 2 + DEAD_AFTER)]
    inventory = read_inventory(tmp_path)
    assert inventory.waiting == []
    assert sorted(r.row["model"] for r in inventory.rejected) == ["p0", "p1", "p2"]
    assert all("while the leaderboard took other rows" in r.message for r in inventory.rejected)


def test_posting_stops_only_when_fresh_rows_keep_failing(board: SimLeaderboard, tmp_path: Path) -> None:
    board.script = [500] * 10  # the database is down for everyone: posts fail, and so does reading regions
    board.serve_regions = False
    courier = run(board, tmp_path, *(row(f"m{i}") for i in range(6)))
    assert courier.stopped is not None and "3 posts in a row" in courier.stopped
    assert len(board.rejected) == 3  # it stopped asking
    assert len(read_inventory(tmp_path).waiting) == 6


def test_a_row_older_than_the_limit_is_retired_unsent_and_listed(board: SimLeaderboard, tmp_path: Path) -> None:
    courier = run(board, tmp_path, row("stale", age=7 * 3600), row("fresh"), max_age=6 * 3600)
    assert [r.model for r in board.rows] == ["fresh"]
    assert courier.retired == 1
    assert "older than maxRowAgeSeconds" in (tmp_path / ARCHIVE).read_text()
    assert [r.model for r in read_inventory(tmp_path).archived] == ["stale"]


def test_a_hung_leaderboard_costs_a_post_its_deadline_not_the_run(
    board: SimLeaderboard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ai_job_tester.network.leaderboard.POST_TIMEOUT_SECONDS", 0.5)
    board.hold_posts()
    try:
        started = time.monotonic()
        courier = run(board, tmp_path, row("a"), row("b"), row("c"))
        elapsed = time.monotonic() - started
    finally:
        board.release_posts()
    assert courier.stopped is not None  # three posts that never finished: the leaderboard looks down
    assert elapsed < 10  # three deadlines of 0.5 s, not three hung posts
    assert len(read_inventory(tmp_path).waiting) == 3
