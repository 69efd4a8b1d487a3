"""Fingerprints: what counts as a replay, what never does, the text compared, and the bounded state file."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

from ai_job_tester.cycle.replays import ReplayGuard
from ai_job_tester.domain.discovery import Orchestrator
from ai_job_tester.domain.fingerprints import (
    MIN_TEXT_CHARS,
    REPLAYED_OUTPUT,
    FingerprintIndex,
    Kind,
    Sighting,
    Tally,
    decodes_greedily,
    normalised,
    replay_message,
    text_digest,
)
from ai_job_tester.domain.plan import PlannedJob
from ai_job_tester.domain.reply_text import reply_text
from ai_job_tester.storage import fingerprints
from ai_job_tester.storage.fingerprints import FINGERPRINTS_FILE, KEEP_SECONDS, Memory

from .test_jobs import config, job_for

DAY = 24 * 3600
NOW = 1_800_000_000


def sighting(digest: str = "d1", *, request: str = "r1", at: int = NOW, kind: Kind = Kind.MEDIA) -> Sighting:
    return Sighting(kind, digest, "0x" + "a" * 40, "Text to image", "sdxl", at, request)


def test_the_same_output_for_another_request_is_a_replay_of_the_first_sighting() -> None:
    """The later job is the one flagged, and it names the earliest sighting, not the one before it."""
    index = FingerprintIndex()
    first = sighting(request="r1")
    assert index.sight(first) is None
    assert index.sight(sighting(request="r2", at=NOW + 5)) == first
    assert index.sight(sighting(request="r3", at=NOW + 9)) == first


def test_the_same_output_for_the_same_request_is_not_a_replay() -> None:
    """Answering an identical request identically is what a deterministic model does."""
    index = FingerprintIndex([sighting(request="r1")])
    assert index.sight(sighting(request="r1", at=NOW + 5)) is None


def test_media_and_text_fingerprints_are_apart() -> None:
    """A digest of media bytes never matches one of a text."""
    index = FingerprintIndex([sighting(kind=Kind.MEDIA)])
    assert index.sight(sighting(kind=Kind.TEXT, request="r2")) is None


def test_recent_keeps_the_newest_within_the_window() -> None:
    """The file is bounded twice: by age and by count."""
    index = FingerprintIndex([sighting(f"d{n}", at=NOW - n * DAY) for n in range(10)])
    kept = index.recent(now=NOW, keep_seconds=7 * DAY, limit=3)
    assert [s.digest for s in kept] == ["d2", "d1", "d0"]
    assert len(index.recent(now=NOW, keep_seconds=7 * DAY, limit=100)) == 8


def test_the_message_names_the_earlier_job() -> None:
    """Orchestrator, pipeline, model and when, so an operator can look the earlier row up."""
    message = replay_message(Kind.MEDIA, sighting(at=0))
    assert message.startswith("the media are byte-identical to 0xaaaa")
    assert "Text to image / sdxl job at 1970-01-01 00:00:00 UTC" in message


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("The answer is  42.\n" + "x" * 60, "the ANSWER is 42. " + "X" * 60, True),  # case and spacing do not hide it
        ("The answer is 42. " + "x" * 60, "The answer is 43. " + "x" * 60, False),
    ],
)
def test_text_is_compared_normalised(first: str, second: str, same: bool) -> None:
    """A cache cannot dodge the check by changing case or whitespace."""
    assert (text_digest(first) == text_digest(second)) is same


def test_short_text_is_not_compared() -> None:
    """Below the threshold two honest answers to different questions can be the same."""
    assert text_digest("a" * (MIN_TEXT_CHARS - 1)) is None and text_digest("a" * MIN_TEXT_CHARS) is not None
    assert len(normalised("  a \n b ")) == 3


@pytest.mark.parametrize(
    ("parameters", "greedy"),
    [({}, False), ({"temperature": 0.7}, False), ({"temperature": 0}, True), ({"temperature": "0"}, True),
     ({"top_k": 1}, True), ({"top_k": -1}, False), ({"temperature": True}, False)],
)  # fmt: skip
def test_greedy_decoding_is_recognised(parameters: dict[str, object], greedy: bool) -> None:
    """An LLM asked for its likeliest answer may honestly repeat itself: its text is not compared."""
    assert decodes_greedily(parameters) is greedy


@pytest.mark.parametrize(
    ("route", "body", "text"),
    [
        ("llm", b'{"choices": [{"message": {"role": "assistant", "content": "hi there"}}]}', "hi there"),
        (
            "llm",
            b'data: {"choices": [{"delta": {"content": "hi "}}]}\n\ndata: {"choices": [{"delta": '
            b'{"content": "there"}, "finish_reason": "stop"}]}\n\n',
            "hi there",
        ),
        ("llm", b'{"response": "42 characters"}', "42 characters"),
        ("image-to-text", b'{"text": "a cat"}', "a cat"),
        ("audio-to-text", b'{"text": "hello", "chunks": []}', "hello"),
        ("text-to-image", b'{"images": []}', None),
        ("llm", b"not json", None),
        ("image-to-text", b'{"text": 5}', None),
    ],
)
def test_reply_text_reads_every_text_shape(route: str, body: bytes, text: str | None) -> None:
    """JSON and streamed LLM answers, captions and transcripts; anything else has no text."""
    assert reply_text(route, body) == text


def test_lanes_racing_with_the_same_output_make_exactly_one_replay() -> None:
    """The index is shared by the lanes' threads: "known? remember" is one step."""
    guard = ReplayGuard(Memory())
    job = job_for(config(), "text-to-image")
    verdicts = []
    barrier = threading.Barrier(8)

    def lane(number: int) -> None:
        barrier.wait()
        verdicts.append(guard.check(job, kind=Kind.MEDIA, digest="same", started_at=NOW, input_parameters=str(number)))

    threads = [threading.Thread(target=lane, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(v is None for v in verdicts) == 1
    assert {v.error_code for v in verdicts if v is not None} == {REPLAYED_OUTPUT}
    assert guard.tally == Tally(checked=8, replayed=7)


def test_the_guard_remembers_only_a_week(tmp_path: Path) -> None:
    """Old fingerprints are dropped when saved; the lifetime tally is kept."""
    old = sighting("old", at=NOW - KEEP_SECONDS - 1)
    guard = ReplayGuard(Memory((old, sighting("new")), Tally(5, 1)))
    fingerprints.save(tmp_path, guard.memory(now=NOW))
    memory = fingerprints.load(tmp_path)
    assert [s.digest for s in memory.sightings] == ["new"] and memory.tally == Tally(5, 1)


def test_the_state_file_round_trips(tmp_path: Path) -> None:
    """What one cycle saves, the next reads back, field for field."""
    kept = (sighting("a", kind=Kind.TEXT), sighting("b", request="r9", at=NOW + 1))
    fingerprints.save(tmp_path, Memory(kept, Tally(2, 0)))
    assert fingerprints.load(tmp_path) == Memory(kept, Tally(2, 0))
    assert not (tmp_path / (FINGERPRINTS_FILE + ".tmp")).exists()  # written aside, then renamed


def test_a_missing_file_is_an_empty_memory(tmp_path: Path) -> None:
    """The first cycle starts with nothing to compare against."""
    assert fingerprints.load(tmp_path) == Memory()


@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"[]",
        json.dumps({"version": 2, "sightings": []}).encode(),
        json.dumps({"version": 1, "checked": -1}).encode(),
        json.dumps({"version": 1, "sightings": [["media", "d", "o", "p", "m", "yesterday", "r"]]}).encode(),
        json.dumps({"version": 1, "sightings": [["sound", "d", "o", "p", "m", 1, "r"]]}).encode(),
    ],
    ids=["truncated", "not-an-object", "future-version", "negative-tally", "bad-time", "unknown-kind"],
)
def test_a_damaged_file_is_set_aside_with_a_warning(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Never a traceback: the file moves to .broken, memory starts afresh, the log says why."""
    (tmp_path / FINGERPRINTS_FILE).write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="ai_job_tester"):
        assert fingerprints.load(tmp_path) == Memory()
    assert (tmp_path / (FINGERPRINTS_FILE + ".broken")).read_bytes() == content
    assert "set aside as fingerprints.json.broken" in caplog.text


def test_a_write_that_fails_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A full disk costs the next cycle its memory, not this cycle its results."""
    (tmp_path / (FINGERPRINTS_FILE + ".tmp")).mkdir()  # the temporary file cannot be written
    with caplog.at_level(logging.WARNING, logger="ai_job_tester"):
        fingerprints.save(tmp_path, Memory((sighting(),), Tally(1, 0)))
    assert "could not write" in caplog.text


def test_a_job_of_the_guard_is_named_by_its_coordinates() -> None:
    """The sighting the guard keeps carries the job's orchestrator, capability and model."""
    guard = ReplayGuard(Memory())
    job = PlannedJob(Orchestrator("0x" + "b" * 40, "https://b"), "Text to image", "flux", True,
                     job_for(config(), "text-to-image").pipeline)  # fmt: skip
    guard.check(job, kind=Kind.MEDIA, digest="x", started_at=NOW, input_parameters="{}")
    [kept] = guard.memory(now=NOW).sightings
    assert (kept.orchestrator, kept.pipeline, kept.model, kept.at) == ("0x" + "b" * 40, "Text to image", "flux", NOW)
