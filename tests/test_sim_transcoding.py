"""The simulated gateway's HTTP push answers as livepeer-transcoding-contract.md §1–§2 says, over real HTTP."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from requests_toolbelt.multipart.decoder import MultipartDecoder

from ai_job_tester.network.webhook import Webhook
from ai_job_tester.resources import transcode_segment
from ai_job_tester.sandbox import SimNetwork, SimOrchestrator, TranscodeBehaviour, TranscodeFault
from ai_job_tester.sandbox.profiles import DEFAULT_PROFILES
from ai_job_tester.sandbox.transcoder import Transcoder

SEGMENT_PATH = transcode_segment()
assert SEGMENT_PATH is not None, "test-assets/test-segment.ts is missing: run test-assets/make-assets.sh"
SEGMENT = SEGMENT_PATH.read_bytes()
DEFAULT_NAMES = [p.name for p in DEFAULT_PROFILES]
ONE_PROFILE = json.dumps({"profiles": [{"name": "P144p30fps16x9", "width": 256, "height": 144, "bitrate": 400000}]})


def orchestrator(n: int, fault: TranscodeFault = TranscodeFault.NONE, **behaviour: Any) -> SimOrchestrator:
    return SimOrchestrator(
        address=f"0x{n:040x}".replace("0x0", "0xA", 1),  # mixed case, as a checksummed address
        service_uri=f"https://orch-{n}.sim:8935",
        models=(),
        transcoding=TranscodeBehaviour(fault=fault, **behaviour),
    )


@dataclass
class Rig:
    network: SimNetwork
    hook: Webhook
    orchestrators: list[SimOrchestrator]

    def show(self, *orchestrators: SimOrchestrator) -> None:
        self.hook.show([o.service_uri for o in orchestrators])

    def push(
        self,
        manifest: str,
        seq: int = 0,
        *,
        config: str | None = None,
        accept: str | None = "multipart/mixed",
        body: bytes = SEGMENT,
        extra: dict[str, str] | None = None,
        method: str = "POST",
        name: str | None = None,
    ) -> httpx.Response:
        headers = {"Content-Duration": "2000", **(extra or {})}
        if accept is not None:
            headers["Accept"] = accept
        if config is not None:
            headers["Livepeer-Transcode-Configuration"] = config
        url = f"{self.network.gateway.http_url}/live/{manifest}/{name or f'{seq}.ts'}"
        return httpx.request(method, url, content=body, headers=headers, timeout=30)


@pytest.fixture
def rig(start_network: Callable[..., SimNetwork]) -> Iterator[Callable[..., Rig]]:
    """A network of the test's orchestrators, its webhook (the tester's own) listing the first one."""
    hooks: list[Webhook] = []

    def make(*orchestrators: SimOrchestrator, **options: Any) -> Rig:
        network = start_network(list(orchestrators), **options)
        hook = Webhook.bind("127.0.0.1", 0, token=network.webhook_token)
        hook.start()
        hooks.append(hook)
        network.point_webhook(hook.port)
        made = Rig(network, hook, list(orchestrators))
        if orchestrators:
            made.show(orchestrators[0])
        return made

    yield make
    for hook in hooks:
        hook.close()


def parts(reply: httpx.Response) -> list[Any]:
    return list(MultipartDecoder(reply.content, reply.headers["content-type"]).parts)


def names(reply: httpx.Response) -> list[str]:
    return [part.headers[b"Rendition-Name"].decode() for part in parts(reply)]


def processing_error(manifest: str, seq: int, error: str) -> str:
    return f'http push error processing segment url=/live/{manifest}/{seq}.ts manifestID={manifest} err="{error}"\n'


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.02)


# --- the reply ------------------------------------------------------------------------------


def test_a_listed_orchestrator_transcodes_the_default_profiles_into_one_multipart_reply(
    rig: Callable[..., Rig],
) -> None:
    """The success reply's shape: boundary, one part per profile in order, the four part headers."""
    sim = rig(orchestrator(1))
    reply = sim.push("ok", 7)
    assert reply.status_code == 200
    assert re.fullmatch(r"multipart/mixed; boundary=[0-9a-f]{20}", reply.headers["content-type"])
    assert "content-length" not in reply.headers  # Go flushes the head first: a chunked reply
    got = parts(reply)
    assert names(reply) == DEFAULT_NAMES
    for part, name in zip(got, DEFAULT_NAMES, strict=True):
        assert part.headers[b"Content-Type"].decode() == f'video/mp2t; name="{name}_7.ts"'
        assert part.headers[b"Content-Disposition"].decode() == f'attachment; filename="{name}_7.ts"'
        assert int(part.headers[b"Content-Length"]) == len(part.content) > 0
    [served] = sim.orchestrators[0].transcoded
    assert (served.orchestrator, served.manifest_id, served.seq, served.renditions) == (
        sim.orchestrators[0].address.lower(), "ok", 7, 2,
    )  # fmt: skip
    assert served.profiles == tuple(DEFAULT_NAMES)
    assert sim.network.gateway.pushed[-1].orchestrator == sim.orchestrators[0].address.lower()


def test_nothing_listed_is_503_no_sessions_available(rig: Callable[..., Rig]) -> None:
    """An empty webhook answer leaves the stream without an orchestrator."""
    sim = rig(orchestrator(1))
    sim.show()
    reply = sim.push("none")
    assert (reply.status_code, reply.text) == (503, "No sessions available\n")


def test_an_empty_answer_at_the_start_leaves_the_stream_without_orchestrators_for_its_life(
    rig: Callable[..., Rig],
) -> None:
    """go-livepeer#1103: the pool is sized at the start; listing one later does not help that stream."""
    sim = rig(orchestrator(1))
    sim.show()
    assert sim.push("empty-start", 0).status_code == 503
    sim.show(sim.orchestrators[0])
    assert sim.push("empty-start", 1).status_code == 503
    assert sim.push("fresh", 0).status_code == 200


def test_an_orchestrator_that_does_not_transcode_is_never_used(rig: Callable[..., Rig]) -> None:
    """Listed is not enough: discovery keeps only orchestrators that offer transcoding."""
    ai_only = SimOrchestrator(address="0x" + "9" * 40, service_uri="https://ai.sim:8935", models=(), transcoding=None)
    sim = rig(ai_only)
    assert sim.push("ai-only").status_code == 503


@pytest.mark.parametrize("accept", [None, "*/*", "multipart/mixed; charset=utf-8", "Multipart/Mixed", "multipart/*"])
def test_any_accept_but_exactly_multipart_mixed_gets_an_empty_200_though_it_was_transcoded(
    rig: Callable[..., Rig], accept: str | None
) -> None:
    """Pitfall 9: a 200 is no proof; the comparison is exact string equality."""
    sim = rig(orchestrator(1))
    reply = sim.push("accept", accept=accept)  # httpx sends */* when no Accept is given
    assert (reply.status_code, reply.content) == (200, b"")
    assert "content-type" not in reply.headers
    assert len(sim.orchestrators[0].transcoded) == 1


# --- profiles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (None, DEFAULT_NAMES),
        (json.dumps({"presets": ["P144p30fps16x9", "P240p30fps16x9"]}), ["P144p30fps16x9", "P240p30fps16x9"]),
        (json.dumps({"presets": ["P144p30fps16x9", "P999p", "P144p25fps16x9"]}), ["P144p30fps16x9"]),
        (ONE_PROFILE, ["P144p30fps16x9"]),
        (json.dumps({"profiles": [{"width": 256, "height": 144, "bitrate": 400000}]}), ["custom_256x144_400000"]),
        (
            json.dumps({"presets": ["P240p30fps16x9"], "PROFILES": [{"name": "tiny", "width": 128, "height": 72}]}),
            ["P240p30fps16x9", "tiny"],
        ),
        (json.dumps({"profiles": None, "unknown": [1, 2]}), DEFAULT_NAMES),
    ],
)
def test_presets_then_profiles_name_the_renditions_in_order(
    rig: Callable[..., Rig], config: str | None, expected: list[str]
) -> None:
    """Profile resolution: presets first (unknown dropped), then profiles; the default only when neither."""
    sim = rig(orchestrator(1))
    reply = sim.push("profiles", config=config)
    assert reply.status_code == 200
    assert names(reply) == expected


@pytest.mark.parametrize(
    "config",
    [json.dumps({"profiles": []}), json.dumps({"presets": ["P240p"]}), json.dumps({"profiles": [], "presets": []})],
)
def test_zero_renditions_asked_is_an_empty_200_with_nothing_transcoded(rig: Callable[..., Rig], config: str) -> None:
    """Pitfall 10: an empty profile list or only misspelled presets return 200 with no orchestrator involved."""
    sim = rig(orchestrator(1))
    sim.show()  # not even an orchestrator is needed
    reply = sim.push("zero", config=config)
    assert (reply.status_code, reply.content) == (200, b"")
    assert sim.orchestrators[0].transcoded == []


@pytest.mark.parametrize(
    "config",
    [
        "{not json",
        "[1]",
        json.dumps({"profiles": [{"name": "a", "width": "426", "height": 240}]}),
        json.dumps({"profiles": [{"name": "a", "width": 426.0, "height": 240}]}),
        json.dumps({"profiles": [{"name": "a", "width": 426, "height": 240, "fps": -1}]}),
        json.dumps({"profiles": [{"name": 5}]}),
        json.dumps({"profiles": {"name": "a"}}),
        json.dumps({"presets": "P240p30fps16x9"}),
        json.dumps({"timeoutMultiplier": 1.5}),
        json.dumps({"forceSessionReinit": "true"}),
    ],
)
def test_a_header_of_bad_json_or_a_wrong_json_type_is_400(rig: Callable[..., Rig], config: str) -> None:
    """Go's strict decoding: the whole header fails and nothing reaches an orchestrator."""
    sim = rig(orchestrator(1))
    reply = sim.push("bad-header", config=config)
    assert reply.status_code == 400
    assert reply.text.startswith("failed to parse transcode config header: ")
    assert sim.orchestrators[0].transcoded == []


@pytest.mark.parametrize("profile", [{"encoder": "h264"}, {"profile": "H264Extreme"}, {"gop": "two"}, {"gop": "-1"}])
def test_a_profile_value_lpms_refuses_fails_stream_creation_with_500(
    rig: Callable[..., Rig], profile: dict[str, str]
) -> None:
    """Well-typed but invalid values fail at stream creation, not at header parsing."""
    sim = rig(orchestrator(1))
    config = json.dumps({"profiles": [{"name": "a", "width": 256, "height": 144, **profile}]})
    reply = sim.push("bad-value", config=config)
    assert (reply.status_code, reply.text) == (500, "Could not create stream ID: url=/live/bad-value/0.ts\n")


def test_case_insensitive_profile_names_and_exact_encoders_are_accepted(rig: Callable[..., Rig]) -> None:
    """``profile`` is case-insensitive, ``encoder`` exactly ``H.264``; ``gop`` may be seconds or intra."""
    sim = rig(orchestrator(1))
    profile = {"name": "a", "width": 256, "height": 144, "profile": "h264main", "encoder": "H.264", "gop": "2"}
    config = json.dumps({"profiles": [profile]})
    assert names(sim.push("good-values", config=config)) == ["a"]


# --- request checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "DELETE", "PATCH"])
def test_other_methods_are_405(rig: Callable[..., Rig], method: str) -> None:
    """Only POST and PUT push a segment."""
    sim = rig(orchestrator(1))
    assert sim.push("method", method=method, body=b"").status_code == 405


def test_put_pushes_like_post(rig: Callable[..., Rig]) -> None:
    """PUT is the other accepted method."""
    sim = rig(orchestrator(1))
    assert names(sim.push("put", method="PUT")) == DEFAULT_NAMES


@pytest.mark.parametrize(
    ("name", "text"), [("0.mkv", "ignoring file extension: .mkv"), ("0", "ignoring file extension: ")]
)
def test_an_extension_other_than_ts_or_mp4_is_400(rig: Callable[..., Rig], name: str, text: str) -> None:
    """The file extension picks the container; anything else is refused."""
    sim = rig(orchestrator(1))
    reply = sim.push("ext", name=name)
    assert (reply.status_code, reply.text) == (400, text + "\n")


def test_a_non_integer_file_name_is_sequence_zero(rig: Callable[..., Rig]) -> None:
    """seqNo only names the parts: a name that is no integer is 0."""
    sim = rig(orchestrator(1))
    reply = sim.push("seq", name="segment-a.ts")
    assert parts(reply)[0].headers[b"Content-Disposition"].decode().endswith('_0.ts"')


def test_a_body_over_the_segment_limit_is_500(rig: Callable[..., Rig]) -> None:
    """MaxSegSize: a larger body is refused before anything else happens (limit lowered for the test)."""
    sim = rig(orchestrator(1))
    sim.network.gateway.max_segment_bytes = len(SEGMENT) - 1
    reply = sim.push("big")
    assert (reply.status_code, reply.text) == (
        500, "Error reading http request body: input bigger than max buffer size\n",
    )  # fmt: skip
    assert sim.network.gateway.streams == {}


@pytest.mark.parametrize(
    ("duration", "status"), [("300001", 500), ("-1", 500), ("300000", 200), ("2s", 200), ("", 200)]
)
def test_content_duration_is_integer_milliseconds_within_300_seconds(
    rig: Callable[..., Rig], duration: str, status: int
) -> None:
    """A non-integer falls back to 2000 ms; out of range is 500 invalid duration."""
    sim = rig(orchestrator(1))
    reply = sim.push("duration", extra={"Content-Duration": duration})
    assert reply.status_code == status
    if status == 500:
        assert reply.text == processing_error("duration", 0, "invalid duration")


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "renditions"),
    [
        (TranscodeFault.MISSING_RENDITIONS, 200, 1),
        (TranscodeFault.WRONG_RESOLUTION, 200, 2),
        (TranscodeFault.ZERO_PARTS, 200, 0),
        (TranscodeFault.SLOW, 200, 2),
        (TranscodeFault.ERROR, 422, 0),
    ],
)
def test_each_transcoding_fault_shapes_the_reply(
    rig: Callable[..., Rig], fault: TranscodeFault, status: int, renditions: int
) -> None:
    """Every fault a test can give an orchestrator, and the reply the tester sees for it."""
    sim = rig(orchestrator(1, fault, slow_seconds=0.3))
    started = time.perf_counter()
    reply = sim.push("fault", 3)
    assert reply.status_code == status
    [served] = sim.orchestrators[0].transcoded
    assert served.renditions == renditions
    if status == 200:
        assert reply.headers["content-type"].startswith("multipart/mixed; boundary=")
        assert len(parts(reply)) == renditions
    else:
        assert reply.text == processing_error("fault", 3, "Transcode")
    if fault is TranscodeFault.SLOW:
        assert time.perf_counter() - started >= 0.3
    if fault is TranscodeFault.WRONG_RESOLUTION:
        assert all(part.content == SEGMENT for part in parts(reply))


def test_a_dropping_orchestrator_closes_the_connection_without_a_reply(rig: Callable[..., Rig]) -> None:
    """Fault DROP: the tester's request ends in a protocol error, not a status."""
    sim = rig(orchestrator(1, TranscodeFault.DROP))
    with pytest.raises(httpx.RemoteProtocolError):
        sim.push("drop")
    assert len(sim.orchestrators[0].transcoded) == 1


def test_a_listed_orchestrator_that_refuses_sessions_is_503_and_never_gets_a_segment(rig: Callable[..., Rig]) -> None:
    """Fault NO_SESSIONS: it fails discovery, so the pool stays empty."""
    sim = rig(orchestrator(1, TranscodeFault.NO_SESSIONS))
    assert (sim.push("refuses").status_code, sim.push("refuses", 1).status_code) == (503, 503)
    assert sim.orchestrators[0].transcoded == []


def test_one_failure_empties_a_pinned_pool_so_later_segments_get_503(rig: Callable[..., Rig]) -> None:
    """Pitfall 4: a failed attempt removes the orchestrator from the stream; the real error is not repeated."""
    sim = rig(orchestrator(1, TranscodeFault.ERROR))
    assert [sim.push("suspend", seq).status_code for seq in range(3)] == [422, 503, 503]
    assert len(sim.orchestrators[0].transcoded) == 1


# --- streams and session selection ------------------------------------------------------------


def test_a_reused_manifest_continues_its_stream_with_the_old_orchestrator_and_profiles(rig: Callable[..., Rig]) -> None:
    """Pitfall 5: the header and the webhook's new answer are ignored for a stream the gateway holds."""
    first, second = orchestrator(1), orchestrator(2)
    sim = rig(first, second)
    assert names(sim.push("reuse", 0, config=ONE_PROFILE)) == ["P144p30fps16x9"]
    sim.show(second)
    assert names(sim.push("reuse", 1, config=json.dumps({"presets": ["P240p30fps16x9"]}))) == ["P144p30fps16x9"]
    assert [s.seq for s in first.transcoded] == [0, 1] and second.transcoded == []


def test_a_later_listed_orchestrator_joins_a_running_stream(rig: Callable[..., Rig]) -> None:
    """Pitfall 3: a stream of one orchestrator asks the webhook again on later segments and grows its pool."""
    first, second = orchestrator(1), orchestrator(2)
    sim = rig(first, second)
    assert sim.push("join", 0).status_code == 200
    asked = sim.hook.requests
    sim.show(second)
    assert sim.push("join", 1).status_code == 200  # still the first; the refresh adds the second
    assert sim.hook.requests > asked
    assert [o.service_uri for o in sim.network.gateway.streams["join"].pool] == [first.service_uri, second.service_uri]
    assert first.transcoding is not None
    first.transcoding.fault = TranscodeFault.ERROR
    assert sim.push("join", 2).status_code == 422
    assert sim.push("join", 3).status_code == 200
    assert [s.seq for s in second.transcoded] == [3]


def test_tester_mode_asks_the_webhook_for_every_new_stream(rig: Callable[..., Rig]) -> None:
    """With a refresh interval of 0 a new manifest goes to whatever the webhook lists right now."""
    first, second = orchestrator(1), orchestrator(2)
    sim = rig(first, second)
    assert sim.push("a").status_code == 200
    sim.show(second)
    assert sim.push("b").status_code == 200
    assert [len(first.transcoded), len(second.transcoded)] == [1, 1]


def test_a_mainline_gateway_serves_new_streams_from_a_60_second_cache(rig: Callable[..., Rig]) -> None:
    """Pitfall 1: the cached list sends the next orchestrator's stream to the previous one."""
    first, second = orchestrator(1), orchestrator(2)
    sim = rig(first, second, tester_mode=False)
    assert sim.push("a").status_code == 200
    asked = sim.hook.requests
    sim.show(second)
    assert sim.push("b").status_code == 200
    assert sim.hook.requests == asked and len(first.transcoded) == 2
    sim.network.gateway.webhook_cache_seconds = 0.0  # as if the 60 s had passed
    assert sim.push("c").status_code == 200
    assert [s.manifest_id for s in second.transcoded] == ["c"]


def test_a_failed_webhook_fetch_reuses_the_last_good_list(rig: Callable[..., Rig]) -> None:
    """Pitfall 2 (go-livepeer#4027): with the webhook down, new streams still go to the last listed."""
    sim = rig(orchestrator(1))
    assert sim.push("before").status_code == 200
    sim.network.gateway.webhook_url = "http://127.0.0.1:9/orchestrators"  # nothing listens there
    assert sim.push("after").status_code == 200
    assert [s.manifest_id for s in sim.orchestrators[0].transcoded] == ["before", "after"]


def test_max_sessions_refuses_a_new_stream_until_an_idle_one_is_forgotten(rig: Callable[..., Rig]) -> None:
    """Pitfall 7: idle streams hold maxSessions; after stream_idle_seconds they are removed."""
    sim = rig(orchestrator(1), max_sessions=2, stream_idle_seconds=0.3)
    assert [sim.push(m).status_code for m in ("s1", "s2")] == [200, 200]
    reply = sim.push("s3")
    assert (reply.status_code, reply.text) == (500, "Could not create stream ID: url=/live/s3/0.ts\n")
    assert sim.push("s1", 1).status_code == 200  # a held stream still takes segments
    wait_for(lambda: sim.push("s3").status_code == 200)


# --- the renditions themselves ----------------------------------------------------------------


def _probe(data: bytes, folder: Path) -> str:
    path = folder / "part.ts"
    path.write_bytes(data)
    command = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
               "-of", "csv=p=0:s=x", str(path)]  # fmt: skip
    # An MPEG-TS lists its streams under the program too: the first line is enough.
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()[0]


@pytest.mark.skipif(not (shutil.which("ffmpeg") and shutil.which("ffprobe")), reason="needs ffmpeg and ffprobe")
def test_renditions_really_have_the_profiles_size_unless_the_orchestrator_keeps_the_source(
    rig: Callable[..., Rig], tmp_path: Path
) -> None:
    """A tester that probes the parts sees the size it asked for, and the source size from a faulty one."""
    good, lazy = orchestrator(1), orchestrator(2, TranscodeFault.WRONG_RESOLUTION)
    sim = rig(good, lazy)
    assert [_probe(p.content, tmp_path) for p in parts(sim.push("size"))] == ["426x240", "640x360"]
    sim.show(lazy)
    assert [_probe(p.content, tmp_path) for p in parts(sim.push("lazy"))] == ["640x360", "640x360"]


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="needs ffmpeg")
def test_the_same_segment_and_profile_are_transcoded_once() -> None:
    """The cache keeps tests that push one clip many times fast."""
    transcoder = Transcoder()
    first = transcoder.renditions(SEGMENT, DEFAULT_PROFILES)
    again = transcoder.renditions(SEGMENT, DEFAULT_PROFILES[::-1])
    assert (transcoder.runs, again) == (1, first[::-1])


def test_without_ffmpeg_every_rendition_is_a_copy_of_the_segment() -> None:
    """The fallback keeps the simulator usable on a machine without ffmpeg."""
    assert Transcoder(ffmpeg="").renditions(b"segment", DEFAULT_PROFILES) == [b"segment", b"segment"]
