"""Downloading the media a reply points at, off the round-trip clock (judged in ``domain.media``).

The URL comes from the reply, so it is untrusted: only http(s) on the gateway's host or a
host of ``mediaHosts`` is fetched, and a redirect is followed (a few hops at most) only
while it stays on such a host. The whole body is read, up to a cap, and hashed: the
fingerprint that replayed outputs are caught by. One total deadline covers every hop.
"""

from __future__ import annotations

import hashlib
import time
from urllib.parse import urljoin

import httpx

from ..domain.media import HEAD_BYTES, KIND_BYTES, MediaFetch, MediaTarget, allowed_hosts, host_problem, is_allowed

MEDIA_TIMEOUT_SECONDS = 30.0
FINGERPRINT_CAP_BYTES = 64 * 1024 * 1024
"""Media are hashed over at most this much: an image-to-video MP4 is a few MiB; memory stays flat whatever."""

MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def fetch(
    client: httpx.Client,
    gateway: str,
    target: MediaTarget,
    *,
    allowed: frozenset[str] | None = None,
    cap: int = FINGERPRINT_CAP_BYTES,
) -> MediaFetch:
    """Download the media (relative URLs from the gateway's HTTP port), keep its first bytes and hash it.

    ``allowed`` is the hosts it may come from (by default only the gateway's).
    """
    started = time.perf_counter()
    deadline = started + MEDIA_TIMEOUT_SECONDS
    if allowed is None:
        allowed = allowed_hosts(httpx.URL(gateway).host)
    url = urljoin(gateway.rstrip("/") + "/", target.url)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            # The host that is checked is the one the client parsed, so the check and the request agree.
            parsed = httpx.URL(url)
            problem = host_problem(parsed.scheme, parsed.host, allowed)
            if problem is not None:
                unlisted = parsed.scheme in ("http", "https") and not is_allowed(parsed.host, allowed)
                return MediaFetch(time.perf_counter() - started, refused=problem, unlisted_host=unlisted)
            location = _get(client, parsed, target, deadline, cap, started)
            if isinstance(location, MediaFetch):
                return location
            url = urljoin(str(parsed), location)
    except (httpx.InvalidURL, ValueError) as exc:  # ValueError: urljoin's, e.g. a broken IPv6 host
        return MediaFetch(time.perf_counter() - started, refused=f"it is not a usable URL ({exc})")
    except httpx.HTTPError as exc:
        return MediaFetch(time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
    return MediaFetch(time.perf_counter() - started, refused=f"it redirects more than {MAX_REDIRECTS} times")


def _get(
    client: httpx.Client, url: httpx.URL, target: MediaTarget, deadline: float, cap: int, started: float
) -> MediaFetch | str:
    """One hop: the media as fetched, or where a redirect points."""
    left = max(0.001, deadline - time.perf_counter())
    # A total deadline (the lean transport honours it): a server dripping bytes stops there too.
    with client.stream("GET", url, timeout=left, follow_redirects=False, extensions={"deadline": deadline}) as reply:
        location = reply.headers.get("location")
        if reply.status_code in _REDIRECTS and location:
            return str(location)
        status = reply.status_code
        head = bytearray()
        hasher = hashlib.sha256()
        size = 0
        complete, error = True, None
        try:
            for chunk in reply.iter_bytes():
                chunk = chunk[: cap - size]
                head += chunk[: HEAD_BYTES - len(head)]
                hasher.update(chunk)
                size += len(chunk)
                wrong = len(head) >= KIND_BYTES and not target.kind.matches(bytes(head[:KIND_BYTES]))
                if size >= cap or (wrong and len(head) >= HEAD_BYTES):
                    complete = False  # capped, or the wrong kind: enough read to say what it is
                    break
                if time.perf_counter() > deadline:
                    raise httpx.ReadTimeout("the media did not finish within the output check's deadline")
        except httpx.HTTPError as exc:  # after the reply began: what arrived is still judged
            complete, error = False, f"{type(exc).__name__}: {exc}"
    fingerprinted = status == 200 and error is None and (complete or size >= cap)
    return MediaFetch(
        time.perf_counter() - started,
        status,
        bytes(head),
        size,
        complete=complete,
        error=error,
        digest=hasher.hexdigest() if fingerprinted and size else None,
    )
