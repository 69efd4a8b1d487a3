"""Downloading the media a reply points at, off the round-trip clock (judged in ``domain.media``)."""

from __future__ import annotations

import time
from urllib.parse import urljoin

import httpx

from ..domain.media import HEAD_BYTES, MediaFetch, MediaTarget

MEDIA_TIMEOUT_SECONDS = 30.0


def fetch(client: httpx.Client, gateway: str, target: MediaTarget) -> MediaFetch:
    """Start downloading the media (relative URLs from the gateway's HTTP port) and keep its first bytes.

    The check needs only those, so the download stops there: a long video costs no more.
    """
    url = urljoin(gateway.rstrip("/") + "/", target.url)
    started = time.perf_counter()
    head = bytearray()
    size = 0
    try:
        # A total deadline (the lean transport honours it): a server dripping bytes stops there too.
        deadline = {"deadline": started + MEDIA_TIMEOUT_SECONDS}
        with client.stream(
            "GET", url, timeout=MEDIA_TIMEOUT_SECONDS, follow_redirects=True, extensions=deadline
        ) as reply:
            for chunk in reply.iter_bytes():
                head += chunk[: HEAD_BYTES - len(head)]
                size += len(chunk)
                if len(head) >= HEAD_BYTES:
                    break
            status = reply.status_code
    except httpx.HTTPError as exc:
        return MediaFetch(time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
    return MediaFetch(time.perf_counter() - started, status, bytes(head), size)
