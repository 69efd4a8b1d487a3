"""Config loading: the Go tester's files load unchanged; bad files get one line naming the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ai_job_tester.config import check_asset, load_config, parse_config
from ai_job_tester.errors import ConfigError
from ai_job_tester.resources import seed_config

from .conftest import GO_CONFIG


def go_raw() -> dict[str, Any]:
    return json.loads(GO_CONFIG.read_text())


def test_go_tester_config_loads_unchanged() -> None:
    config = load_config(GO_CONFIG)
    assert config.region == "NYC"
    assert config.internal_web_server_port == 7934  # a string in the file
    assert config.broadcaster_request_token is None  # "None" means no token
    assert config.broadcaster_job_endpoint == "http://localhost:8935"
    assert [p.route for p in config.pipelines][:2] == ["segment-anything-2", "text-to-image"]
    llm = config.pipelines[-1]
    assert (llm.name, llm.route, llm.content_type) == ("Large language model", "llm", "multipart/form-data")


def test_seed_config_has_every_gateway_pipeline() -> None:
    path = seed_config()
    assert path is not None
    config = load_config(path)
    routes = {p.route for p in config.pipelines}
    assert routes == {
        "text-to-image", "image-to-image", "image-to-video", "upscale", "audio-to-text",
        "segment-anything-2", "llm", "image-to-text", "text-to-speech", "live-video-to-video",
    }  # fmt: skip
    llm = next(p for p in config.pipelines if p.route == "llm")
    assert llm.content_type == "application/json" and llm.resolved_model_field == "model"
    assert {"messages", "max_tokens", "stream"} <= set(llm.parameters)


def test_default_assets_and_fields_follow_the_route() -> None:
    config = load_config(GO_CONFIG)
    by_route = {p.route: (i, p) for i, p in enumerate(config.pipelines)}
    audio_index, audio = by_route["audio-to-text"]
    assert config.asset_paths[audio_index].name == "test-audio.mp4" and audio.resolved_file_field == "audio"
    assert config.asset_paths[by_route["upscale"][0]].name == "test-upscale.jpg"
    assert config.asset_paths[by_route["image-to-image"][0]].name == "test-image.png"
    assert by_route["text-to-image"][0] not in config.asset_paths  # JSON: no file
    assert by_route["llm"][0] not in config.asset_paths  # the old multipart /llm sends no file


def test_relative_asset_resolves_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / "mine.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    raw = go_raw()
    raw["pipelines"][0]["asset"] = "mine.png"
    config = parse_config(raw, source=tmp_path / "config.json")
    assert config.asset_paths[0] == tmp_path / "mine.png"


def _with(change: dict[str, Any] | None = None, pipeline: dict[str, Any] | None = None, drop: str = "") -> Any:
    raw = copy.deepcopy(go_raw())
    raw["pipelines"][0].update(pipeline or {})
    raw.update(change or {})
    raw.pop(drop, None)
    return raw


BAD_CONFIGS = [
    (_with({"regoin": "FRA"}), "regoin: unknown key"),
    (_with(drop="metricsSecret"), "metricsSecret: required key is missing"),
    (_with({"internalWebServerPort": "70000"}), "internalWebServerPort: Input should be less than or equal to 65535"),
    (_with({"internalWebServerPort": "seven"}), "internalWebServerPort: Input should be a valid integer"),
    (_with({"broadcasterJobEndpoint": "localhost:8935"}), "broadcasterJobEndpoint: must be an absolute http"),
    (_with({"metricsApiEndpoint": "http://host:99999/api"}), "metricsApiEndpoint: has an invalid port"),
    (_with({"region": "fra"}), "region: must be the upper-case region code, e.g. 'FRA'"),
    (_with(pipeline={"contentType": "text/plain"}), "pipelines[0].contentType: Input should be"),
    (_with(pipeline={"capture_response": "maybe"}), "pipelines[0].capture_response: Input should be a valid boolean"),
    (_with(pipeline={"timeout": 0}), "pipelines[0].timeout: Input should be greater than 0"),
    (_with(pipeline={"uri": "text-to-image"}), "pipelines[1].uri 'text-to-image' repeats pipelines[0]"),
    (
        _with(pipeline={"asset": "/nonexistent/x.png"}),
        "pipelines[0].asset: test file /nonexistent/x.png does not exist",
    ),
    (_with({"pipelines": []}), "pipelines: List should have at least 1 item"),
    ([1, 2], "the config must be a JSON object"),
]


@pytest.mark.parametrize(("raw", "message"), BAD_CONFIGS)
def test_bad_config_names_the_field(raw: Any, message: str, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ")
    assert message in text
    assert "\n" not in text
    assert caught.value.exit_code == 2


def test_invalid_json_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{\n  "region": "FRA",\n  "jobType" "ai"\n}')
    with pytest.raises(ConfigError, match=r"invalid JSON at line 3, column 13: Expecting ':' delimiter"):
        load_config(path)


def test_missing_file_says_how_to_pass_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file; pass one with -f CONFIG"):
        load_config(tmp_path / "absent.json")


def test_secret_never_appears_in_a_config_error(tmp_path: Path) -> None:
    raw = _with({"metricsSecret": "s3cr3t-value", "broadcasterRequestToken": "t0ken-value", "bogus": 1})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "s3cr3t" not in str(caught.value) and "t0ken" not in str(caught.value)
    assert "s3cr3t" not in repr(parse_config(_with({"metricsSecret": "s3cr3t-value"}), source=path))


def test_tls_is_verified_unless_explicitly_turned_off(tmp_path: Path) -> None:
    assert load_config(GO_CONFIG).verify_tls is True
    config = parse_config(_with({"verifyTls": False, "stateDir": "state"}), source=tmp_path / "c.json")
    assert config.verify_tls is False
    assert config.state_dir == tmp_path / "state"  # relative to the config file


@pytest.mark.parametrize(
    ("field", "content", "problem"),
    [
        ("image", b"", "is empty"),
        ("image", b"hello", "is not a PNG, JPEG or GIF image"),
        ("image", b"GIF89a....", None),
        ("audio", b"\x00\x00\x00\x18ftypisom", None),
        ("audio", b"RIFF\x00\x00\x00\x00WAVE", None),
        ("audio", b"plain text", "is not a known audio container"),
    ],
)
def test_test_files_are_checked_by_their_leading_bytes(
    field: str, content: bytes, problem: str | None, tmp_path: Path
) -> None:
    path = tmp_path / "asset"
    path.write_bytes(content)
    found = check_asset(path, field)
    assert (found is None) if problem is None else (found is not None and found.startswith(problem))


def test_shipped_assets_pass_their_own_checks() -> None:
    config = load_config(GO_CONFIG)
    for index, path in config.asset_paths.items():
        assert check_asset(path, config.pipelines[index].resolved_file_field) is None


def test_secrets_from_the_environment_override_the_file(tmp_path: Path) -> None:
    env = {"METRICS_SECRET": "env-secret", "BROADCASTER_REQUEST_TOKEN": "env-token"}
    config = parse_config(_with(drop="metricsSecret"), source=tmp_path / "c.json", environ=env)
    assert config.metrics_secret.get_secret_value() == "env-secret"
    assert config.broadcaster_request_token is not None
    assert config.broadcaster_request_token.get_secret_value() == "env-token"


def test_the_go_testers_live_video_block_loads(tmp_path: Path) -> None:
    block = {"mediaServerURL": "rtmp://mediamtx:1935", "testVideoPath": "test-assets/live.mp4",
             "testDurationSeconds": 30, "probeGracePeriodSeconds": 20, "orchMapping": {"0xa": ["https://a"]},
             "targetFPS": 24, "maxInitialLatencySeconds": 8, "maxProbeAttempts": 3}  # fmt: skip
    config = parse_config(_with({"liveVideo": block}), source=tmp_path / "c.json")
    assert config.live_video is not None
    assert (config.live_video.playback_base, config.live_video.target_fps) == ("rtmp://mediamtx:1935", 24)
