"""Post signed rows to the leaderboard API (contract, section 7)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from ..domain import rows
from ..domain.delivery import Delivery
from ..domain.text import gateway_message
from .deadline import DeadlineExceeded, within

POST_TIMEOUT_SECONDS = 15.0
"""The whole post, or the whole regions request: connect, headers and body together."""

MAX_REPLY_BYTES = 64 * 1024


class _Region(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    type: str


class _Regions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    regions: list[_Region]


def regions_url(post_stats_url: str) -> str:
    """``GET /api/regions`` lives on the same host as ``post_stats``."""
    parts = urlsplit(post_stats_url)
    return f"{parts.scheme}://{parts.netloc}/api/regions"


class Leaderboard:
    """Signs and posts rows; never raises for a failed post, it reports one."""

    def __init__(self, client: httpx.Client, endpoint: str, secret: SecretStr) -> None:
        self._client = client
        self._endpoint = endpoint
        self._secret = secret

    def ai_regions(self) -> list[str] | None:
        """Return the ids of the leaderboard's AI regions, or None when they cannot be had."""
        return self.regions("ai")

    def regions(self, kind: str) -> list[str] | None:
        """Return the ids of the leaderboard's regions of one type (``ai``, ``transcoding``), or None if unreadable."""
        try:
            status, body = within(POST_TIMEOUT_SECONDS, lambda: self._request("GET", regions_url(self._endpoint)),
                                  what="reading the leaderboard's regions")  # fmt: skip
            if status != 200:
                return None
            document = _Regions.model_validate_json(body)
        except (httpx.HTTPError, ValidationError, DeadlineExceeded, RecursionError):
            return None
        return sorted({region.id for region in document.regions if region.type == kind})

    def post(self, row: rows.Row) -> Delivery:
        body = rows.encode(row)
        headers = {
            "Content-Type": "application/json",
            "Authorization": rows.sign(body, self._secret.get_secret_value()),
        }
        try:
            status, reply = within(
                POST_TIMEOUT_SECONDS, lambda: self._request("POST", self._endpoint, body, headers), what="the post"
            )
        except (httpx.HTTPError, DeadlineExceeded) as exc:
            return Delivery(False, None, f"the leaderboard could not be reached ({type(exc).__name__}: {exc})")
        if status == 200:
            return Delivery(True, 200)
        # The leaderboard writes its error and then "ok": the status decides, the first line explains.
        first_line = reply.split(b"\n", 1)[0]
        return Delivery(False, status, f"HTTP {status}: {gateway_message(first_line)}")

    def _request(
        self, method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """One request, its reply read up to ``MAX_REPLY_BYTES`` (a leaderboard answers in a few bytes)."""
        with self._client.stream(method, url, content=body, headers=headers, timeout=POST_TIMEOUT_SECONDS) as reply:
            kept = bytearray()
            for chunk in reply.iter_bytes():
                kept += chunk[: MAX_REPLY_BYTES - len(kept)]
                if len(kept) >= MAX_REPLY_BYTES:
                    break
            return reply.status_code, bytes(kept)
