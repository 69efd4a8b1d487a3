"""Config loading: the Go tester's files load unchanged; bad files get one line naming the field."""

from __future__ import annotations

import copy
import json
import os
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
    (_with(pipeline={"timeout": 0}), "pipelines[0].timeout: Input should be greater than or equal to 0.1"),
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
    (tmp_path / "test-assets").mkdir()
    (tmp_path / "test-assets" / "live.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom")
    block = {"mediaServerURL": "rtmp://mediamtx:1935", "testVideoPath": "test-assets/live.mp4",
             "testDurationSeconds": 30, "probeGracePeriodSeconds": 20, "orchMapping": {"0xa": ["https://a"]},
             "targetFPS": 24, "maxInitialLatencySeconds": 8, "maxProbeAttempts": 3}  # fmt: skip
    config = parse_config(_with({"liveVideo": block}), source=tmp_path / "c.json")
    assert config.live_video is not None
    assert (config.live_video.playback_base, config.live_video.target_fps) == ("rtmp://mediamtx:1935", 24)


def test_the_test_video_resolves_beside_the_config_so_ffmpeg_finds_it_from_any_folder(tmp_path: Path) -> None:
    (tmp_path / "live.mp4").write_bytes(b"video")
    config = parse_config(_with({"liveVideo": {**LIVE, "testVideoPath": "live.mp4"}}), source=tmp_path / "c.json")
    assert config.live_video is not None and config.live_video.source == str(tmp_path / "live.mp4")


@pytest.mark.parametrize(
    ("key", "url"),
    [
        ("mediaServerURL", "rtmp://mediamtx:1935/live"),
        ("mediaServerURL", "rtmps://media.example:443"),
        ("mediaServerURL", "http://127.0.0.1:8080"),  # FLV over HTTP, as the simulated media server takes it
        ("playbackURL", "rtsp://mediamtx:8554"),
        ("playbackURL", "https://media.example/hls"),
    ],
)
def test_media_urls_of_the_schemes_ffmpeg_pushes_and_reads_load(key: str, url: str, tmp_path: Path) -> None:
    config = parse_config(_with({"liveVideo": {**LIVE, key: url}}), source=tmp_path / "c.json")
    assert config.live_video is not None and url in (config.live_video.media_server_url, config.live_video.playback_url)


# Bad config files, byte for byte, with the exact line `ai-job-tester validate` prints for each
# (blackbox_exporter's config_test.go style): whatever a file holds, one `Error:` line, exit 2.
def _file(change: dict[str, Any] | None = None, pipeline: dict[str, Any] | None = None) -> bytes:
    return json.dumps(_with(change, pipeline)).encode()


LIVE = {"mediaServerURL": "rtmp://mediamtx:1935"}
UNKNOWN = "unknown key (check its spelling against the README's config reference)"
HIDDEN = "the value is not shown"

CONTROL = "contains a control character (NUL, CR, LF, tab…) or a lone surrogate"
GATEWAY = {"broadcasterJobEndpoint": "http://g:8935", "broadcasterCliEndpoint": "http://g:7935"}
NO_TOP_LEVEL = {"broadcasterJobEndpoint": None, "broadcasterCliEndpoint": None}
DUPLICATE_LONG_URI = _with()
DUPLICATE_LONG_URI["pipelines"][1]["uri"] = "/" * 100_000 + "segment-anything-2"

# Values no file system call, socket or ffmpeg can use: refused at load by `validate` and `run` alike.
UNUSABLE_VALUES = {
    "asset with NUL": (_file(pipeline={"asset": "a\u0000b"}), f"pipelines[0].asset: {CONTROL}"),
    "asset of 5000 characters": (
        _file(pipeline={"asset": "a" * 5000}),
        "pipelines[0].asset: is longer than 4096 characters",
    ),
    "asset name too long for the file system": (
        _file(pipeline={"asset": "/" + "a" * 300}),
        f"pipelines[0].asset: test file /{'a' * 198}… cannot be read (File name too long)",
    ),
    "segmentPath with NUL": (
        _file({"transcoding": {"segmentPath": "seg\u0000.ts"}}),
        f"transcoding.segmentPath: {CONTROL}",
    ),
    "segmentPath too long for the file system": (
        _file({"transcoding": {"segmentPath": "/" + "s" * 300}}),
        f"transcoding.segmentPath: test segment /{'s' * 198}… cannot be read (File name too long)",
    ),
    "stateDir with NUL": (_file({"stateDir": "state\u0000"}), f"stateDir: {CONTROL}"),
    "stateDir of 5000 characters": (_file({"stateDir": "s" * 5000}), "stateDir: is longer than 4096 characters"),
    "webhook address with NUL": (
        _file({"internalWebServerAddress": "0.0.0.0\u0000"}),
        f"internalWebServerAddress: {CONTROL}",
    ),
    "webhook address of 100 KB": (
        _file({"internalWebServerAddress": "a" * 100_000}),
        "internalWebServerAddress: is longer than 255 characters",
    ),
    "webhook address with a space": (
        _file({"internalWebServerAddress": "0.0.0.0 "}),
        "internalWebServerAddress: must be a host name or an IP address (letters, digits and . - _ : %)",
    ),
    "gateway webhook address with NUL": (
        _file({"gateways": [{**GATEWAY, "internalWebServerAddress": "\u0000"}], **NO_TOP_LEVEL}),
        f"gateways[0].internalWebServerAddress: {CONTROL}",
    ),
    "endpoint with NUL": (
        _file({"broadcasterJobEndpoint": "http://g\u0000:8935"}),
        f"broadcasterJobEndpoint: {CONTROL}",
    ),
    "endpoint of 100 KB": (
        _file({"broadcasterCliEndpoint": "http://" + "g" * 100_000}),
        "broadcasterCliEndpoint: is longer than 2048 characters",
    ),
    "test video with NUL": (
        _file({"liveVideo": {**LIVE, "testVideoPath": "live\u0000.mp4"}}),
        f"liveVideo.testVideoPath: {CONTROL}",
    ),
    "missing test video": (
        _file({"liveVideo": {**LIVE, "testVideoPath": "/nonexistent/live.mp4"}}),
        "liveVideo.testVideoPath: test file /nonexistent/live.mp4 does not exist",
    ),
    "test video that is a folder": (
        _file({"liveVideo": {**LIVE, "testVideoPath": "/"}}),
        "liveVideo.testVideoPath: test file / cannot be read (Is a directory)",
    ),
    "media server URL of one NUL": (
        _file({"liveVideo": {"mediaServerURL": "\u0000"}}),
        f"liveVideo.mediaServerURL: {CONTROL}",
    ),
    "media server URL without a scheme": (
        _file({"liveVideo": {"mediaServerURL": "mediamtx:1935"}}),
        "liveVideo.mediaServerURL: must be an absolute rtmp://, rtmps://, http:// or https:// URL with a host",
    ),
    "media server URL without a host": (
        _file({"liveVideo": {"mediaServerURL": "rtmp:///live"}}),
        "liveVideo.mediaServerURL: must be an absolute rtmp://, rtmps://, http:// or https:// URL with a host",
    ),
    "media server URL over RTSP, which ffmpeg's FLV push cannot use": (
        _file({"liveVideo": {"mediaServerURL": "rtsp://mediamtx:8554"}}),
        "liveVideo.mediaServerURL: must be an absolute rtmp://, rtmps://, http:// or https:// URL with a host",
    ),
    "playback URL of another scheme": (
        _file({"liveVideo": {**LIVE, "playbackURL": "udp://239.0.0.1:1234"}}),
        "liveVideo.playbackURL: must be an absolute rtmp://, rtmps://, http://, https://, rtsp:// or rtsps:// URL "
        "with a host",
    ),
    "playback URL with a bad port": (
        _file({"liveVideo": {**LIVE, "playbackURL": "rtmp://m:99999"}}),
        "liveVideo.playbackURL: has an invalid port (Port out of range 0-65535)",
    ),
    "a repeated uri of 100 KB, cut in the line": (
        json.dumps(DUPLICATE_LONG_URI).encode(),
        f"pipelines[1].uri '{'/' * 79}…' repeats pipelines[0]; each route may be configured once",
    ),
}

# Numbers that cannot measure anything: refused at load, not misreported at the first job.
USELESS_NUMBERS = {
    "timeout 1e-300": (
        _file(pipeline={"timeout": 1e-300}),
        "pipelines[0].timeout: Input should be greater than or equal to 0.1",
    ),
    "timeout 0.0005": (
        _file(pipeline={"timeout": 0.0005}),
        "pipelines[0].timeout: Input should be greater than or equal to 0.1",
    ),
    "maxDuration 1e-300": (_file({"maxDuration": 1e-300}), "maxDuration: Input should be greater than or equal to 1"),
    **{
        f"{key} 1e-300": (
            _file({"liveVideo": {**LIVE, key: 1e-300}}),
            f"liveVideo.{key}: Input should be greater than or equal to 1",
        )
        for key in (
            "testDurationSeconds",
            "maxInitialLatencySeconds",
            "statusTimeoutSeconds",
            "outputTimeoutSeconds",
            "targetFPS",
        )
    },
    "negative busy backoff": (
        _file({"liveVideo": {**LIVE, "busyBackoffSeconds": -1}}),
        "liveVideo.busyBackoffSeconds: Input should be greater than or equal to 0",
    ),
    "maxRowAgeSeconds under a minute": (
        _file({"maxRowAgeSeconds": 1}),
        "maxRowAgeSeconds: Input should be greater than or equal to 60",
    ),
}

BAD_FILES = {
    **UNUSABLE_VALUES,
    **USELESS_NUMBERS,
    "unknown liveVideo key": (_file({"liveVideo": {**LIVE, "targetFps": 30}}), f"liveVideo.targetFps: {UNKNOWN}"),
    "misspelt liveVideo key": (_file({"liveVideo": {**LIVE, "busyPases": 2}}), f"liveVideo.busyPases: {UNKNOWN}"),
    "unknown pipeline key": (_file(pipeline={"timout": 5}), f"pipelines[0].timout: {UNKNOWN}"),
    "unknown prompt variant key": (
        _file(pipeline={"promptVariants": [{"id": "a", "prompt": "x"}]}),
        f"pipelines[0].promptVariants[0].prompt: {UNKNOWN}",
    ),
    "unknown gateway key": (
        _file(
            {
                "gateways": [
                    {"broadcasterJobEndpoint": "http://g:8935", "broadcasterCliEndpoint": "http://g:7935", "port": 1}
                ],
                "broadcasterJobEndpoint": None,
                "broadcasterCliEndpoint": None,
            }
        ),
        f"gateways[0].port: {UNKNOWN}",
    ),
    "a key that is a control sequence": (_file({"a\n\x1b[31mb": 1}), f"a [31mb: {UNKNOWN}"),
    "timeout 1e300": (
        _file(pipeline={"timeout": 1e300}),
        "pipelines[0].timeout: Input should be less than or equal to 3600",
    ),
    "timeout beyond a float": (b'{"region": 1e400}', "a number in the config file is too large or not a number"),
    "NaN": (b'{"maxDuration": NaN}', "a number in the config file is too large or not a number"),
    "an integer of 5000 digits": (
        b'{"captureLimitBytes": ' + b"9" * 5000 + b"}",
        "a number in the config file has too many digits",
    ),
    "maxDuration over a week": (
        _file({"maxDuration": 1e7}),
        "maxDuration: Input should be less than or equal to 604800",
    ),
    "captureLimitBytes over 256 MiB": (
        _file({"captureLimitBytes": 2**40}),
        "captureLimitBytes: Input should be less than or equal to 268435456",
    ),
    "negative health gate": (
        _file({"healthGateOrchestrators": -1}),
        "healthGateOrchestrators: Input should be greater than or equal to 0",
    ),
    "live frame rate": (
        _file({"liveVideo": {**LIVE, "targetFPS": 1e6}}),
        "liveVideo.targetFPS: Input should be less than or equal to 240",
    ),
    "live duration": (
        _file({"liveVideo": {**LIVE, "testDurationSeconds": 1e9}}),
        "liveVideo.testDurationSeconds: Input should be less than or equal to 3600",
    ),
    "busy passes": (
        _file({"liveVideo": {**LIVE, "busyPasses": 10**9}}),
        "liveVideo.busyPasses: Input should be less than or equal to 100",
    ),
    "port out of range": (
        _file({"internalWebServerPort": 0}),
        "internalWebServerPort: Input should be greater than or equal to 1",
    ),
    "not UTF-8": (b'{"region": "\xff\xfe"}', "the config file is not UTF-8 text (byte 13 is invalid)"),
    "100,000 nested lists": (b"[" * 100_000, "the config file nests lists or objects too deeply"),
    "100,000 nested objects": (b'{"a":' * 100_000, "the config file nests lists or objects too deeply"),
    "parameters 100 levels deep": (
        _file(pipeline={"parameters": json.loads("[" * 100 + "]" * 100)}),
        "the config nests lists or objects more than 64 levels deep",
    ),
    "over 10 MiB": (b" " * (10 * 1024 * 1024 + 1), "the config file is larger than 10 MiB"),
    "empty": (b"", "invalid JSON at line 1, column 1: Expecting value"),
    "not an object": (b"[]", "the config must be a JSON object"),
    "token with CR inside": (
        _file({"broadcasterRequestToken": "tok\ren-x"}),
        f"broadcasterRequestToken: contains a control character (CR, LF, NUL, tab…); {HIDDEN}",
    ),
    "token with a space": (
        _file({"broadcasterRequestToken": "tok en-x"}),
        f"broadcasterRequestToken: contains a space, which a Bearer token cannot carry ({HIDDEN})",
    ),
    "non-ASCII token": (
        _file({"broadcasterRequestToken": "tökenx"}),
        f"broadcasterRequestToken: contains non-ASCII characters, which an HTTP header cannot carry ({HIDDEN})",
    ),
    "secret with NUL": (
        _file({"metricsSecret": "sec\u0000retx"}),
        f"metricsSecret: contains a control character (CR, LF, NUL, tab…); {HIDDEN}",
    ),
    "secret with a lone surrogate": (
        _file({"metricsSecret": "SURROGATE"}).replace(b"SURROGATE", b"sec\\ud800retx"),
        f"metricsSecret: is not valid Unicode text (a lone surrogate; {HIDDEN})",
    ),
    "blank secret": (_file({"metricsSecret": " \r\n"}), "metricsSecret: is empty"),
    "secret of 2000 characters": (
        _file({"metricsSecret": "s" * 2000}),
        f"metricsSecret: is longer than 1024 characters ({HIDDEN})",
    ),
    "mediaHosts with a scheme": (
        _file({"mediaHosts": ["https://store.example.com"]}),
        "mediaHosts[0]: 'https://store.example.com' is not a host name: give the host alone, "
        "e.g. 'storage.example.com'",
    ),
    "mediaHosts with a port": (
        _file({"mediaHosts": ["store.example.com:9000"]}),
        "mediaHosts[0]: 'store.example.com:9000' has a port: give the host alone (any port of it is allowed)",
    ),
    "vary that is not a bool": (
        _file(pipeline={"vary": "sometimes"}),
        "pipelines[0].vary: Input should be a valid boolean, unable to interpret input",
    ),
    "short webhook token": (
        _file({"webhookToken": "abc"}),
        "webhookToken: must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ - (e.g. from `openssl rand -hex 16`); "
        f"{HIDDEN}",
    ),
}


def validate(*args: str, env: dict[str, str] | None = None) -> Any:
    from typer.testing import CliRunner

    from ai_job_tester.cli import app

    return CliRunner().invoke(app, ["validate", *args], env=env, catch_exceptions=False)


@pytest.mark.parametrize(("content", "message"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_config_file_is_one_error_line_and_exit_2(content: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content)
    result = validate("-f", str(path))
    assert (result.exit_code, result.stderr, result.stdout) == (2, f"Error: {path}: {message}\n", "")


@pytest.mark.parametrize(("content", "message"), UNUSABLE_VALUES.values(), ids=UNUSABLE_VALUES.keys())
def test_run_refuses_an_unusable_value_with_the_same_line_before_any_work(
    content: bytes, message: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from ai_job_tester.cli import app

    path = tmp_path / "config.json"
    path.write_bytes(content)
    result = CliRunner().invoke(app, ["run", "-f", str(path)], catch_exceptions=False)
    assert (result.exit_code, result.stderr, result.stdout) == (2, f"Error: {path}: {message}\n", "")


def test_a_missing_file_or_a_folder_is_one_error_line(tmp_path: Path) -> None:
    missing, folder = tmp_path / "absent.json", tmp_path
    assert validate("-f", str(missing)).stderr == f"Error: {missing}: no such config file; pass one with -f CONFIG\n"
    result = validate("-f", str(folder))
    assert (result.exit_code, result.stderr) == (2, f"Error: {folder}: cannot read the config file (Is a directory)\n")


def test_an_unreadable_file_is_one_error_line_not_a_usage_box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """click's own readability check printed a five-line box; the loader's line is the one shown.

    The file system says "unreadable" for this file whoever runs the test (root reads anything,
    and a user dropped to nobody could not start an interpreter installed under /root).
    """
    path = tmp_path / "config.json"
    path.write_bytes(_file())
    real_access, real_open = os.access, Path.open

    def access(target: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        return False if Path(target) == path else real_access(target, mode, *args, **kwargs)

    def open_(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(Path, "open", open_)
    monkeypatch.setattr(Path, "read_bytes", lambda self: open_(self).read())
    result = validate("-f", str(path))
    assert (result.exit_code, result.stderr) == (2, f"Error: {path}: cannot read the config file (Permission denied)\n")


SECRET_KEYS = {"metricsSecret": "METRICS_SECRET", "broadcasterRequestToken": "BROADCASTER_REQUEST_TOKEN",
               "webhookToken": "WEBHOOK_TOKEN"}  # fmt: skip
BAD_SECRETS = {
    "CR": "Zq7secretCR\rZq7",
    "LF": "Zq7secretLF\nZq7",
    "NUL": "Zq7secretNUL\x00Zq7",
    "escape sequence": "Zq7secret\x1b[2JZq7",
    "non-ASCII": "Zq7secretÄÖÜZq7",
    "lone surrogate": "Zq7secret\udcffZq7",
    "very long": "Zq7" + "x" * 100_000,
}


@pytest.mark.parametrize("key", SECRET_KEYS)
@pytest.mark.parametrize("value", BAD_SECRETS.values(), ids=BAD_SECRETS.keys())
@pytest.mark.parametrize("origin", ["file", "environment"])
def test_a_secret_that_cannot_be_sent_is_refused_at_load_without_showing_it(
    key: str, value: str, origin: str, tmp_path: Path
) -> None:
    if key == "metricsSecret" and value == BAD_SECRETS["non-ASCII"]:
        return  # an HMAC key: non-ASCII text is encoded UTF-8 and signs correctly (see the test below)
    path = tmp_path / "config.json"
    if origin == "file":
        path.write_text(json.dumps(_with({key: value})), encoding="utf-8")
        environ: dict[str, str] = {}
    else:
        path.write_bytes(_file())
        environ = {SECRET_KEYS[key]: value}
    with pytest.raises(ConfigError) as caught:
        parse_config(json.loads(path.read_text(encoding="utf-8")), source=path, environ=environ)
    line = str(caught.value)
    assert line.startswith(f"{path}: {key}") and "\n" not in line
    assert "Zq7" not in line and "secret" not in line.removeprefix(f"{path}: {key}")
    assert (SECRET_KEYS[key] in line) == (origin == "environment")


def test_secrets_are_stripped_of_surrounding_whitespace_and_a_trailing_cr(tmp_path: Path) -> None:
    """An env file with Windows line endings leaves a CR at the end of every value."""
    env = {"METRICS_SECRET": " sécret\r", "BROADCASTER_REQUEST_TOKEN": "token\r\n",
           "WEBHOOK_TOKEN": "0123456789abcdef\r"}  # fmt: skip
    config = parse_config(_with(), source=tmp_path / "c.json", environ=env)
    assert config.metrics_secret.get_secret_value() == "sécret"  # non-ASCII is fine in an HMAC key
    assert config.broadcaster_request_token is not None
    assert config.broadcaster_request_token.get_secret_value() == "token"
    assert config.webhook_token_value == "0123456789abcdef"


def test_the_go_testers_later_keys_are_accepted_and_ignored(tmp_path: Path) -> None:
    block = {**LIVE, "probeGracePeriodSeconds": 20, "orchMapping": {"0xa": ["https://a"]}, "maxProbeAttempts": 3}
    config = parse_config(_with({"liveVideo": block, "logger": {"level": "debug"}}), source=tmp_path / "c.json")
    assert config.live_video is not None and config.live_video.media_server_url == LIVE["mediaServerURL"]
