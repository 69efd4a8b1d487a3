"""Post signed rows to the leaderboard API (contract, section 7)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from ..domain import rows
from ..domain.delivery import Delivery
from ..domain.text import gateway_message

POST_TIMEOUT_SECONDS = 15.0


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
        try:
            reply = self._client.get(regions_url(self._endpoint), timeout=POST_TIMEOUT_SECONDS)
            if reply.status_code != 200:
                return None
            document = _Regions.model_validate_json(reply.content)
        except (httpx.HTTPError, ValidationError):
            return None
        return sorted({region.id for region in document.regions if region.type == "ai"})

    def post(self, row: rows.LeaderboardRow) -> Delivery:
        body = rows.encode(row)
        headers = {
            "Content-Type": "application/json",
            "Authorization": rows.sign(body, self._secret.get_secret_value()),
        }
        try:
            reply = self._client.post(self._endpoint, content=body, headers=headers, timeout=POST_TIMEOUT_SECONDS)
        except httpx.HTTPError as exc:
            return Delivery(False, None, f"the leaderboard could not be reached ({type(exc).__name__}: {exc})")
        if reply.status_code == 200:
            return Delivery(True, 200)
        return Delivery(False, reply.status_code, f"HTTP {reply.status_code}: {gateway_message(reply.content)}")
