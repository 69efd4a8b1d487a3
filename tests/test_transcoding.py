"""Transcoding, piece by piece: config, the push request, judging replies, rows, scores, the outbox."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from ai_job_tester.config import load_config, parse_config
from ai_job_tester.config.schema import Config
from ai_job_tester.domain import multipart, rows
from ai_job_tester.domain.discovery import Orchestrator
from ai_job_tester.domain.outcome import Outcome, TransportFault
from ai_job_tester.domain.plan import TRANSCODING_CAPABILITY, JobKind, PlannedJob, TranscodeSpec, build_plan
from ai_job_tester.domain.results import build_row
from ai_job_tester.domain.scores import score_cycle, transcoding_score
from ai_job_tester.domain.transcode import (
    PRESETS,
    Probe,
    SegmentReply,
    SegmentResult,
    judge_segment,
    manifest_id,
    parse_ffmpeg_report,
    parse_probe,
    ts_problem,
)
from ai_job_tester.domain.transcode_verdict import TranscodeRun, transcode_result
from ai_job_tester.errors import ConfigError
from ai_job_tester.network.transcode import push_segment, stream_push
from ai_job_tester.storage.outbox import JOURNAL, Outbox

from .conftest import GO_CONFIG
from .segments import segment_file

__all__ = ["segment_file"]  # the fixture, used by name

ORCH = Orchestrator("0x" + "ab" * 20, "https://o.sim:8935")
TS = bytes([0x47] + [0] * 187) * 4  # four MPEG-TS packets
P144, P240 = PRESETS["P144p30fps16x9"], PRESETS["P240p30fps16x9"]


def go_raw(**change: Any) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(GO_CONFIG.read_text())
    raw.update(change)
    return raw


def config(**change: Any) -> Config:
    return parse_config(go_raw(**change), source=GO_CONFIG)


def spec_of(cfg: Config) -> TranscodeSpec:
    spec = cfg.transcode_spec()
    assert spec is not None
    return spec


def job(spec: TranscodeSpec) -> PlannedJob:
    return PlannedJob(ORCH, TRANSCODING_CAPABILITY, spec.label, False, spec)


def multipart_body(parts: list[tuple[str, bytes]], boundary: str = "0123456789abcdef0123") -> tuple[str, bytes]:
    body = b""
    for name, data in parts:
        body += (f"--{boundary}\r\nContent-Type: video/mp2t; name=\"{name}_0.ts\"\r\nContent-Length: {len(data)}\r\n"
                 f"Rendition-Name: {name}\r\n\r\n").encode() + data + b"\r\n"  # fmt: skip
    body += f"--{boundary}--\r\n".encode()
    return f"multipart/mixed; boundary={boundary}", body


def reply(status: int = 200, parts: list[tuple[str, bytes]] | None = None, **extra: Any) -> SegmentReply:
    content_type, body = multipart_body(parts if parts is not None else [("P144p30fps16x9", TS)])
    if status != 200:
        content_type, body = "text/plain", extra.pop("body", b"boom")
    return SegmentReply(0, status, extra.pop("content_type", content_type), extra.pop("body", body), 1.5, upload=0.1,
                        download=0.2, **extra)  # fmt: skip


# --- config -------------------------------------------------------------------------------------------


def test_an_empty_transcoding_block_takes_every_default_and_keeps_ai() -> None:
    cfg = config(transcoding={})
    spec = spec_of(cfg)
    assert cfg.tests_ai and spec.segments == 3 and spec.timeout == 40
    assert [p.name for p in spec.profiles] == ["P144p30fps16x9", "P240p30fps16x9"]
    assert spec.segment.path.name == "test-segment.ts" and spec.segment.content_duration == "2000"
    assert spec.segment.resolution == "640x360"


def test_the_go_testers_config_tests_no_transcoding() -> None:
    assert config().transcode_spec() is None and config().tests_ai


def test_job_type_transcoding_needs_no_pipelines_and_tests_no_ai() -> None:
    raw = go_raw(jobType="transcoding")
    del raw["pipelines"]
    cfg = parse_config(raw, source=GO_CONFIG)
    assert not cfg.tests_ai and spec_of(cfg).segments == 3


def test_profile_objects_are_taken_as_given() -> None:
    profile = {"name": "mine", "width": 320, "height": 180, "bitrate": 300000, "fps": 15}
    spec = spec_of(config(transcoding={"profiles": ["P240p30fps16x9", profile], "segments": 1, "timeout": 9}))
    assert spec.profiles[1].header() == profile and spec.segments == 1 and spec.timeout == 9


def _bad(block: Any, **top: Any) -> dict[str, Any]:
    raw = copy.deepcopy(go_raw(**top))
    raw["transcoding"] = block
    return raw


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_bad({"segmnets": 3}), "transcoding.segmnets: unknown key"),
        (_bad({"segments": 0}), "transcoding.segments: Input should be greater than or equal to 1"),
        (_bad({"segments": 101}), "transcoding.segments: Input should be less than or equal to 100"),
        (_bad({"timeout": 0}), "transcoding.timeout: Input should be greater than 0"),
        (_bad({"profiles": []}), "transcoding.profiles: List should have at least 1 item"),
        (_bad({"profiles": ["P999p"]}), "transcoding.profiles[0]: 'P999p' is not a preset name"),
        (_bad({"profiles": ["P144p25fps16x9"]}), "'P144p25fps16x9' is not a preset name"),
        (_bad({"profiles": [{"name": "x", "width": 9, "height": 100, "bitrate": 10**6}]}), "profiles[0].width"),
        (_bad({"profiles": [{"name": "x", "width": 99, "height": 99, "bitrate": 10**6, "bitrat": 1}]}),
         "profiles[0].bitrat: unknown"),
        (_bad({"profiles": ["P144p30fps16x9", "P144p30fps16x9"]}), "'P144p30fps16x9' is asked for twice"),
        (_bad({"segmentDuration": 301}), "transcoding.segmentDuration: Input should be less than or equal to 300"),
        (_bad({"segmentPath": "/nonexistent/seg.ts"}), "segmentPath: test segment /nonexistent/seg.ts does not exist"),
        (_bad({}, jobType="video"), "jobType: Input should be 'ai' or 'transcoding'"),
    ],
)
def test_a_bad_transcoding_block_names_the_key(raw: Any, message: str, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_ai_still_needs_its_pipelines(tmp_path: Path) -> None:
    raw = go_raw()
    del raw["pipelines"]
    with pytest.raises(ConfigError, match="pipelines: required key is missing"):
        parse_config(raw, source=tmp_path / "c.json")


def test_a_users_segment_is_probed_for_duration_and_size(segment_file: Path, tmp_path: Path) -> None:
    cfg = parse_config(go_raw(transcoding={"segmentPath": str(segment_file)}), source=tmp_path / "c.json")
    segment = spec_of(cfg).segment
    assert segment.content_duration == "2000" and segment.resolution == "640x360"


def test_without_a_prober_a_users_segment_needs_its_duration(
    segment_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ai_job_tester.config.loading.ffprobe", lambda: None)
    with pytest.raises(ConfigError, match=r"segmentDuration: give the duration of .* is installed to read it"):
        parse_config(go_raw(transcoding={"segmentPath": str(segment_file)}), source=tmp_path / "c.json")
    block = {"segmentPath": str(segment_file), "segmentDuration": 2.5}
    segment = spec_of(parse_config(go_raw(transcoding=block), source=tmp_path / "c.json")).segment
    assert segment.content_duration == "2500" and segment.resolution is None


@pytest.mark.parametrize(("content", "problem"), [(b"", "is empty"), (b"x" * 188, "is not MPEG-TS"),
                                                  (b"\x47" * 100, "not whole 188-byte")])  # fmt: skip
def test_a_segment_that_is_not_mpeg_ts_is_refused_at_load(content: bytes, problem: str, tmp_path: Path) -> None:
    (tmp_path / "bad.ts").write_bytes(content)
    with pytest.raises(ConfigError, match=problem):
        parse_config(go_raw(transcoding={"segmentPath": "bad.ts"}), source=tmp_path / "c.json")


# --- plan ---------------------------------------------------------------------------------------------


def test_every_active_orchestrator_gets_one_transcoding_job_and_bad_ones_are_skipped_with_reasons() -> None:
    spec = spec_of(config(transcoding={}))
    bad = Orchestrator("0xnot-an-address", "https://x:1")
    plan = build_plan([ORCH, bad], {}, (), ai=False, transcoding=spec)
    assert [(j.orchestrator, j.kind) for j in plan.jobs] == [(ORCH, JobKind.TRANSCODING)]
    assert [s.reason for s in plan.skipped] == ["its address is not a 0x address of 40 hex digits (the leaderboard "
                                                "could not take it)"]  # fmt: skip


def test_a_pipeline_filter_that_names_no_transcoding_leaves_it_out() -> None:
    from ai_job_tester.domain.plan import Filters

    spec = spec_of(config(transcoding={}))
    assert build_plan([ORCH], {}, (), Filters(pipelines=("text-to-image",)), ai=False, transcoding=spec).jobs == ()
    assert len(build_plan([ORCH], {}, (), Filters(pipelines=("transcoding",)), ai=False, transcoding=spec).jobs) == 1


# --- judging replies -----------------------------------------------------------------------------------


def test_multipart_parts_are_split_with_their_headers() -> None:
    content_type, body = multipart_body([("a", b"one"), ("b", b"two\r\n--x")])
    boundary = multipart.boundary_of(content_type)
    assert boundary == "0123456789abcdef0123"
    parts = multipart.split(body, boundary)
    assert [(p.rendition_name, p.body) for p in parts] == [("a", b"one"), ("b", b"two\r\n--x")]
    assert multipart.split(b"--0123456789abcdef0123--\r\n", boundary) == []
    with pytest.raises(multipart.MalformedMultipart):
        multipart.split(body[:-30], boundary)  # cut short


def test_mpeg_ts_is_whole_packets_each_with_the_sync_byte() -> None:
    assert ts_problem(TS) is None
    assert ts_problem(b"") == "is empty"
    assert "sync byte" in str(ts_problem(TS[:188] + b"\x00" * 188))
    assert "whole 188-byte" in str(ts_problem(TS[:200]))


@pytest.mark.parametrize(
    ("the_reply", "good", "codes"),
    [
        (reply(parts=[("P144p30fps16x9", TS), ("P240p30fps16x9", TS)]), 2, []),
        (reply(parts=[("P144p30fps16x9", TS)]), 1, ["MISSING_RENDITIONS"]),
        (reply(parts=[]), 0, ["NO_RENDITIONS"]),
        (reply(content_type="", body=b""), 0, ["NO_RENDITIONS"]),  # a wrong Accept gets this
        (reply(parts=[("P144p30fps16x9", b""), ("P240p30fps16x9", TS)]), 1, ["BAD_RENDITION"]),
        (reply(parts=[("P144p30fps16x9", b"<html>"), ("P240p30fps16x9", TS)]), 1, ["BAD_RENDITION"]),
        (reply(422, body=b"hit max transcode attempts"), 0, ["422"]),
        (reply(503, body=b"No sessions available"), 0, ["503"]),
        (reply(fault=TransportFault.TIMEOUT, fault_detail="no reply"), 0, ["TIMEOUT"]),
        (reply(captured_all=False), 0, ["BAD_RENDITION"]),
    ],
)
def test_each_reply_is_judged_rendition_by_rendition(the_reply: SegmentReply, good: int, codes: list[str]) -> None:
    result = judge_segment(the_reply, (P144, P240), 2.0)
    assert result.renditions == good and [code for code, _ in result.errors] == codes
    assert (result.round_trip is not None) == (good > 0)  # only a segment with renditions is timed


def test_a_rendition_of_the_wrong_size_or_length_is_bad() -> None:
    ok = judge_segment(reply(parts=[("P144p30fps16x9", TS)]), (P144,), 2.0, lambda data: Probe(256, 144, 2.0))
    assert ok.renditions == 1 and ok.errors == ()
    source_size = judge_segment(reply(), (P144,), 2.0, lambda data: Probe(640, 360, 2.0))
    assert source_size.errors == (("BAD_RENDITION", "rendition P144p30fps16x9 is 640x360, not the 256x144 asked for"),)
    short = judge_segment(reply(), (P144,), 2.0, lambda data: Probe(256, 144, 0.5))
    assert short.renditions == 0 and "lasts 0.50 s" in short.errors[0][1]
    # The source's aspect ratio is kept: a 4:3 box filled in height by 16:9 video is too wide, in width it fits.
    four_three = PRESETS["P360p30fps4x3"]
    assert judge_segment(reply(parts=[(four_three.name, TS)]), (four_three,), 2.0,
                         lambda data: Probe(480, 270, 2.0)).renditions == 1  # fmt: skip


def test_a_rendition_past_the_capture_limit_is_not_counted() -> None:
    two = reply(parts=[("P144p30fps16x9", TS), ("P240p30fps16x9", TS * 10)])
    result = judge_segment(two, (P144, P240), 2.0, part_limit=len(TS) * 2)
    assert result.renditions == 1 and "larger than the capture limit" in result.errors[0][1]


def test_ffprobes_json_is_read_for_size_and_video_duration() -> None:
    text = '{"streams":[{"width":256,"height":144,"duration":"2.000000"}],"format":{"duration":"2.021"}}'
    assert parse_probe(text) == Probe(256, 144, 2.0)
    assert parse_probe("not json") is None and parse_probe("{}") is None


FFMPEG_REPORT = """Input #0, mpegts, from 'pipe:0':
  Duration: N/A, start: 1.445333, bitrate: N/A
  Stream #0:0[0x100]: Video: h264 (Main) ([27][0][0][0] / 0x001B), yuv420p(progressive), 426x240 [SAR 1:1 DAR 16:9], \
30 fps, 30 tbr, 90k tbn
  Stream #0:1[0x101]: Audio: aac (LC) ([15][0][0][0] / 0x000F), 48000 Hz, stereo, fltp, 65 kb/s
frame=    1 fps=0.0 q=-1.0 size=N/A time=-00:00:00.06 bitrate=N/A speed=N/A    \
frame=   60 fps=0.0 q=-1.0 Lsize=N/A time=00:00:01.90 bitrate=N/A speed=7.95e+03x
"""


def test_where_only_ffmpeg_is_installed_its_report_gives_size_and_duration() -> None:
    # The image ships a static ffmpeg and no ffprobe: the size check must not depend on ffprobe.
    assert parse_ffmpeg_report(FFMPEG_REPORT) == Probe(426, 240, 2.0)
    assert parse_ffmpeg_report("pipe:0: Invalid data found when processing input") is None


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"Could not create stream ID: url=http://x", 500), (b"failed to parse transcode config header", 400),
     (b"Unknown input stream codec=mpeg1video", 422)],
)  # fmt: skip
def test_a_push_the_gateway_refuses_itself_is_nobodys_failure(body: bytes, status: int) -> None:
    result = judge_segment(reply(status, body=body), (P144,), 2.0)
    assert result.refused is not None
    spec = spec_of(config(transcoding={}))
    verdict = transcode_result(job(spec), spec, TranscodeRun("m", (result,), 1, 0)).verdict
    assert verdict.outcome is Outcome.REJECTED and verdict.error_code == str(status)


def test_a_stream_the_gateway_never_asked_the_webhook_about_is_unrouted() -> None:
    spec = spec_of(config(transcoding={}))
    good = judge_segment(reply(parts=[("P144p30fps16x9", TS), ("P240p30fps16x9", TS)]), spec.profiles, 2.0)
    result = transcode_result(job(spec), spec, TranscodeRun("m", (good, good, good), 0, 0))
    assert result.outcome is Outcome.UNROUTED and not result.outcome.postable
    no_sessions = judge_segment(reply(503, body=b"No sessions available"), spec.profiles, 2.0)
    assert transcode_result(job(spec), spec, TranscodeRun("m", (no_sessions,), 0, 0)).outcome is Outcome.UNROUTED
    routed = transcode_result(job(spec), spec, TranscodeRun("m", (no_sessions,), 2, 0))
    assert routed.outcome is Outcome.FAILED and routed.verdict.error_code == "503"  # routed: the orchestrator's


def stream(*segments: SegmentResult, webhook: int = 1) -> Any:
    spec = spec_of(config(transcoding={}))
    return transcode_result(job(spec), spec, TranscodeRun("aiJobTester_00ff00ff", segments, webhook, 1700000000))


def test_a_stream_row_has_the_leaderboards_transcoding_fields_only() -> None:
    full = SegmentResult(0, 2, 200, round_trip=1.0, upload=0.1, download=0.2)
    missing = (("MISSING_RENDITIONS", "1 of 2"),)
    half = SegmentResult(1, 1, 200, round_trip=2.0, upload=0.3, download=0.4, errors=missing)
    dead = SegmentResult(2, 0, 503, errors=(("503", "No sessions available"),))
    result = stream(full, half, dead)
    assert result.outcome is Outcome.FAILED and result.verdict.error_code == "MISSING_RENDITIONS"
    row = build_row(result, "FRA")
    assert isinstance(row, rows.TranscodingRow)
    sent = json.loads(rows.encode(row))
    assert set(sent) == {"region", "orchestrator", "timestamp", "segments_sent", "segments_received", "success_rate",
                         "seg_duration", "upload_time", "download_time", "transcode_time", "round_trip_time",
                         "errors"}  # fmt: skip
    assert (sent["segments_sent"], sent["segments_received"], sent["success_rate"]) == (3, 3, 0.5)
    assert sent["round_trip_time"] == 1.5 and sent["seg_duration"] == 2.0 and sent["timestamp"] == 1700000000
    assert math.isclose(sent["transcode_time"], 1.5 - 0.2 - 0.3)
    assert sent["errors"] == [{"error_code": "MISSING_RENDITIONS", "message": "1 of 2", "count": 1},
                              {"error_code": "503", "message": "No sessions available", "count": 1}]  # fmt: skip


def test_a_stream_with_every_rendition_passes_and_a_dead_one_posts_zeros() -> None:
    full = SegmentResult(0, 2, 200, round_trip=1.0, upload=0.1, download=0.2)
    assert stream(full, full).outcome is Outcome.PASSED
    dead = stream(SegmentResult(0, 0, 503, errors=(("503", "No sessions available"),)))
    row = build_row(dead, "FRA")
    assert isinstance(row, rows.TranscodingRow) and row.success_rate == 0 and row.round_trip_time == 0


def test_a_transcoding_rows_messages_are_made_storable() -> None:
    dirty = SegmentResult(0, 0, 500, errors=(("500", "bad\x00news\ud800" + "x" * 5000),))
    row = build_row(stream(dirty), "FRA")
    assert "\x00" not in row.errors[0].message and len(row.errors[0].message) <= rows.MAX_MESSAGE_CHARS
    assert rows.sign(rows.encode(row), "k") == rows.sign(rows.encode(row), "k")


# --- scores -------------------------------------------------------------------------------------------


def test_the_transcoding_score_is_the_leaderboards() -> None:
    sample = transcoding_score(1.0, 2.0089, 1.9470)  # the leaderboard's sample row
    assert round(sample.round_trip_score, 3) == 0.644 and round(sample.score, 3) == 0.644
    assert transcoding_score(1.0, 2.0, 0.0).score == 0  # a failed row: no round trip, no score
    assert transcoding_score(0.5, 2.0, 1.0).score == pytest.approx(0.5 * (1 - math.exp(-2)))


def test_the_cycle_scores_transcoding_with_its_own_formula() -> None:
    result = stream(SegmentResult(0, 2, 200, round_trip=2.0, upload=0.1, download=0.2))
    (score,) = score_cycle([result]).values()
    assert score.score == pytest.approx(1 - math.exp(-1))


# --- the outbox ---------------------------------------------------------------------------------------


def test_the_outbox_keeps_each_rows_kind_and_reads_old_lines_as_ai(tmp_path: Path) -> None:
    row = build_row(stream(SegmentResult(0, 2, 200, round_trip=1.0, upload=0.1, download=0.2)), "FRA")
    ai_row = {"region": "FRA", "orchestrator": "0xab", "success_rate": 1.0, "round_trip_time": 1.0, "errors": [],
              "timestamp": 1, "model": "m", "pipeline": "p", "model_is_warm": True, "input_parameters": "",
              "response_payload": ""}  # fmt: skip
    (tmp_path / JOURNAL).write_text(json.dumps({"id": "00-old", "row": ai_row}) + "\n")  # an older version's line
    with Outbox(tmp_path) as box:
        box.put(row)
    assert '"kind":"transcoding"' in (tmp_path / JOURNAL).read_text()
    with Outbox(tmp_path) as box:
        kinds = sorted(type(p.row).__name__ for p in box.pending())
    assert kinds == ["LeaderboardRow", "TranscodingRow"]


# --- the push request ---------------------------------------------------------------------------------


@respx.mock
def test_a_segment_is_pushed_with_exactly_the_contracts_headers() -> None:
    cfg = config(transcoding={"profiles": ["P144p30fps16x9"]})
    spec = spec_of(cfg)
    mid = manifest_id("00ff00ff00ff00ff")
    assert "/" not in mid
    content_type, body = multipart_body([("P144p30fps16x9", TS)])
    route = respx.post(f"http://localhost:8935/live/{mid}/0.ts").mock(
        return_value=httpx.Response(200, headers={"Content-Type": content_type}, content=body)
    )
    with httpx.Client() as client:
        got = push_segment(client, stream_push(cfg.lanes[0], spec, mid, capture_limit=1 << 20), spec, 0)
    request = route.calls.last.request
    assert request.headers["Accept"] == "multipart/mixed"  # exact: anything else gets an empty 200
    assert request.headers["Content-Duration"] == "2000" and request.headers["Content-Resolution"] == "640x360"
    assert json.loads(request.headers["Livepeer-Transcode-Configuration"]) == {
        "profiles": [{"name": "P144p30fps16x9", "width": 256, "height": 144, "bitrate": 400000, "fps": 30}]
    }
    assert request.content == spec.segment.path.read_bytes()
    assert got.status == 200 and got.body == body and got.upload is not None and got.download is not None
    assert judge_segment(got, spec.profiles, 2.0).renditions == 1


@respx.mock
def test_a_reply_past_the_cap_is_not_kept_whole() -> None:
    cfg = config(transcoding={})
    spec = spec_of(cfg)
    respx.post(url__regex=r".*/live/.*").mock(return_value=httpx.Response(200, content=b"x" * 5000))
    with httpx.Client() as client:
        got = push_segment(client, stream_push(cfg.lanes[0], spec, "m", capture_limit=1000), spec, 0)
    assert len(got.body) == 1000 and not got.captured_all


def test_the_outbox_command_lists_transcoding_rows(tmp_path: Path) -> None:
    from rich.console import Console

    from ai_job_tester.output.console import render_inventory
    from ai_job_tester.storage.inventory import read_inventory

    row = build_row(stream(SegmentResult(0, 1, 200, round_trip=1.0, upload=0.1, download=0.2)), "FRA")
    with Outbox(tmp_path) as box:
        box.put(row)
    console = Console(record=True, width=200)
    render_inventory(read_inventory(tmp_path), tmp_path, console)
    text = console.export_text()
    assert "1 row(s) waiting for delivery" in text and "Transcoding" in text and "50% of renditions" in text
