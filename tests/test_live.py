"""The live contract's names, URLs and hashes, and the measurements from frame timings. Pure."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from ai_job_tester.domain import live


def test_the_params_hash_is_the_runners_not_compact_json() -> None:
    params = {"prompt": "a cat", "a": 1}
    assert live.params_hash(params) == hashlib.md5(b'{"a": 1, "prompt": "a cat"}').hexdigest()
    assert live.params_hash(params) != hashlib.md5(json.dumps(params, separators=(",", ":")).encode()).hexdigest()


def test_stream_ids_have_the_shape_media_servers_expect() -> None:
    stream = live.stream_id(complexity="High", prompt_id="A Bear -- in the Woods, at Night!", params={}, now_ns=42)
    assert stream == f"aiJobTesterStream-high-a-bear-in-the-woods-at-n-{live.params_hash({})[:8]}-42"


def test_the_ingest_url_pins_the_orchestrator_with_sorted_form_encoded_keys() -> None:
    url = live.ingest_url("rtmp://media:1935/", "s1", orchestrator="https://o:8935", params={"prompt": "a b"},
                          selector="comfyui")  # fmt: skip
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "rtmp://media:1935/s1"
    assert [key for key, _ in parse_qsl(parts.query)] == ["orchestrator", "params", "pipeline", "streamId"]
    assert "a+b" in parts.query and dict(parse_qsl(parts.query))["orchestrator"] == "https://o:8935"


def test_frame_lines_are_read_from_showinfo() -> None:
    line = "[Parsed_showinfo_0 @ 0x55] n:   3 pts:   6006 pts_time:0.0667  duration:1501 fmt:yuv420p"
    assert live.frame_pts(line) == pytest.approx(0.0667)
    assert live.frame_pts("Stream #0:0: Video: h264") is None


@pytest.mark.parametrize(
    ("status", "error", "busy"),
    [
        ({"state": "ONLINE"}, None, False),
        ({"gateway_status": {"error": {"error_message": "OrchestratorCapped"}}}, "OrchestratorCapped", True),
        ({"inference_status": {"last_error": "insufficient capacity"}}, "insufficient capacity", True),
        ({"gateway_status": {"error": {"error_message": "no orchestrators available"}}}, "no orchestrators available",
         False),
        ({"state": "ERROR"}, "the stream is in state ERROR", False),
    ],
)  # fmt: skip
def test_a_full_orchestrator_is_busy_not_broken(status: dict[str, object], error: str | None, busy: bool) -> None:
    assert live.status_error(status) == error
    assert live.is_busy(error) is busy


def test_measurements_from_frame_timings() -> None:
    frames = [(2.0, 0.5), (2.1, 0.6), (2.2, 0.7), (2.3, 0.8)]  # (arrival since push start, pts)
    first, fps, latency = live.frame_measurements(frames)
    assert first == 2.0 and fps == pytest.approx(4 / 0.3) and latency == pytest.approx(1.5)
    assert live.frame_measurements([]) == (None, None, None)


def test_the_score_rewards_frame_rate_and_a_quick_start() -> None:
    assert live.live_score(fps=30, target_fps=30, first_frame=1, ready=1, max_initial=10) == pytest.approx(1.0)
    assert live.live_score(fps=15, target_fps=30, first_frame=6, ready=1, max_initial=10) == pytest.approx(
        0.7 * 0.75 + 0.3 * 0.5
    )
    assert live.live_score(fps=None, target_fps=30, first_frame=None, ready=None, max_initial=10) == 0.0
