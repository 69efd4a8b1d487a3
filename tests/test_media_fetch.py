"""The output check's download: only allowed hosts, bounded redirects, the whole body hashed, nothing quoted."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest
import respx

from ai_job_tester.domain.media import (
    KIND_BYTES,
    MediaFetch,
    MediaKind,
    MediaTarget,
    allowed_hosts,
    describe,
    judge,
    media_target,
)
from ai_job_tester.network import media

GATEWAY = "http://gateway:8935"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
IMAGE = MediaKind.IMAGE


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """One fake network per test: every request must match a route; unused routes are fine."""
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def fetch(url: str, *, hosts: tuple[str, ...] = (), cap: int = media.FINGERPRINT_CAP_BYTES) -> MediaFetch:
    with httpx.Client() as client:
        return media.fetch(client, GATEWAY, MediaTarget(url, IMAGE), allowed=allowed_hosts("gateway", hosts), cap=cap)


def test_a_relative_url_is_fetched_from_the_gateway_and_hashed_whole(router: respx.MockRouter) -> None:
    """The fingerprint is the SHA-256 of every byte, not of the head the kind is judged by."""
    router.get(f"{GATEWAY}/stream/a/0.png").respond(200, content=PNG)
    fetched = fetch("/stream/a/0.png")
    assert (fetched.status, fetched.size, fetched.complete) == (200, len(PNG), True)
    assert fetched.digest == hashlib.sha256(PNG).hexdigest() and judge(MediaTarget("x", IMAGE), fetched) is None


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("http://gateway:9000/a.png", ()),
        ("https://GATEWAY/a.png", ()),
        ("https://store.example.com/a.png", ("store.example.com",)),
    ],
    ids=["gateway-other-port", "gateway-https-any-case", "mediaHosts"],
)
def test_absolute_urls_on_allowed_hosts_are_fetched(router: respx.MockRouter, url: str, hosts: tuple[str, ...]) -> None:
    """The gateway's host (any port, http or https) and the hosts of mediaHosts are allowed."""
    router.get(url.replace("GATEWAY", "gateway")).respond(200, content=PNG)
    assert fetch(url, hosts=hosts).digest is not None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (
            "http://169.254.169.254/latest/meta-data",
            "its host '169.254.169.254' is neither the gateway's nor in mediaHosts",
        ),
        ("https://evil.example/a.png", "its host 'evil.example' is neither the gateway's nor in mediaHosts"),
        ("file:///etc/passwd", "its scheme 'file' is not http or https"),
        ("ftp://gateway/a.png", "its scheme 'ftp' is not http or https"),
        ("http://gateway@evil.example/a.png", "its host 'evil.example'"),  # userinfo does not fool the check
    ],
)
def test_urls_elsewhere_are_never_requested(router: respx.MockRouter, url: str, reason: str) -> None:
    """An orchestrator cannot make the tester fetch from anywhere it names: no request leaves, the job fails."""
    route = router.route().respond(200, content=PNG)
    fetched = fetch(url)
    assert not route.called and fetched.refused is not None and reason in fetched.refused
    problem = judge(MediaTarget(url, IMAGE), fetched)
    assert problem is not None and "was not fetched" in problem


def test_a_redirect_on_an_allowed_host_is_followed(router: respx.MockRouter) -> None:
    """Object stores redirect; a hop that stays on an allowed host is fine."""
    router.get(f"{GATEWAY}/a.png").respond(302, headers={"Location": "http://store.example.com/real.png"})
    router.get("http://store.example.com/real.png").respond(200, content=PNG)
    assert fetch("/a.png", hosts=("store.example.com",)).digest == hashlib.sha256(PNG).hexdigest()


def test_a_redirect_to_another_host_is_not_followed(router: respx.MockRouter) -> None:
    """A redirect cannot take the download off the allowed hosts."""
    router.get(f"{GATEWAY}/a.png").respond(301, headers={"Location": "http://evil.example/x"})
    elsewhere = router.get("http://evil.example/x").respond(200, content=PNG)
    fetched = fetch("/a.png")
    assert not elsewhere.called and fetched.refused is not None and "evil.example" in fetched.refused


def test_redirects_are_bounded(router: respx.MockRouter) -> None:
    """A redirect loop ends after a few hops as a failed check, not a hang."""
    loop = router.get(f"{GATEWAY}/a.png").respond(307, headers={"Location": "/a.png"})
    fetched = fetch("/a.png")
    assert fetched.refused == f"it redirects more than {media.MAX_REDIRECTS} times"
    assert loop.call_count == media.MAX_REDIRECTS + 1


def test_media_past_the_cap_are_hashed_over_the_cap(router: respx.MockRouter) -> None:
    """Memory and time stay bounded: the fingerprint covers the first ``cap`` bytes."""
    big = PNG + b"\x01" * 5000
    router.get(f"{GATEWAY}/a.png").respond(200, content=big)
    fetched = fetch("/a.png", cap=1000)
    assert (fetched.size, fetched.complete) == (1000, False)
    assert fetched.digest == hashlib.sha256(big[:1000]).hexdigest()


def test_media_of_the_wrong_kind_are_described_not_quoted(router: respx.MockRouter) -> None:
    """The public row says what came back (kind, size), never the bytes an orchestrator chose."""
    page = b"<!DOCTYPE html><html><script>steal()</script>" + b"x" * 5000
    router.get(f"{GATEWAY}/a.png").respond(200, content=page)
    fetched = fetch("/a.png")
    problem = judge(MediaTarget("/a.png", IMAGE), fetched)
    assert problem is not None and problem.startswith("the image at /a.png is not a PNG or JPEG: it is HTML text, ")
    assert "script" not in problem and "DOCTYPE" not in problem
    assert fetched.digest is None and not fetched.complete  # not read to the end: it fails anyway


def test_a_download_broken_off_after_the_head_passes_unfingerprinted() -> None:
    """The rest of the transfer is the tester's and the gateway's business: no failure, no fingerprint."""
    fetched = MediaFetch(1.0, 200, PNG[: KIND_BYTES + 4], KIND_BYTES + 4, error="ReadTimeout: slow")
    assert judge(MediaTarget("/a.png", IMAGE), fetched) is None and fetched.digest is None


@pytest.mark.parametrize(
    ("head", "looks"),
    [
        (b"\x89PNG\r\n\x1a\n\x00", "a PNG image"),
        (b"\xff\xd8\xff\xe0", "a JPEG image"),
        (b"GIF89a", "a GIF image"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "a WebP image"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "a WAV file"),
        (b"\x00\x00\x00\x18ftypisom", "an MP4 or QuickTime file"),
        (b"  <html><body>", "HTML text"),
        (b'{"error": "no"}', "JSON text"),
        (b"<?xml version='1.0'?>", "XML text"),
        (b"not found\n", "plain text"),
        (b"\x00\x01\x02\x03\xfe\xff", "unknown binary"),
        ("caf\u00e9".encode()[:-1], "plain text"),  # a character cut at the end of the head is still text
        (b"\x1b[31mred\x1b[0m", "unknown binary"),  # escape sequences are not shown as text
    ],
)
def test_describe_says_what_media_look_like(head: bytes, looks: str) -> None:
    """Kind and size, in words."""
    assert describe(head, 2048) == f"{looks}, 2.0 KiB"


def test_an_nsfw_image_is_marked_so_its_stand_in_is_not_taken_for_a_replay() -> None:
    """Safety filters answer many requests with the same blank image: the reply says so."""
    target = media_target("text-to-image", b'{"images": [{"url": "/a.png", "seed": 1, "nsfw": true}]}')
    assert target is not None and target.nsfw
