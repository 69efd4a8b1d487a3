"""Leaderboard rows: one per job, with exactly the contract's field names and JSON types.

Two shapes: an AI row (``LeaderboardRow``, with ``model`` and ``pipeline``) and a
transcoding row (``TranscodingRow``, without them: the leaderboard tells the two apart by
those two keys). Pure: building, encoding and signing. Posting is in ``leaderboard.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, NonNegativeFloat, NonNegativeInt

from .text import TRUNCATION_MARKER, decoded, storable

MAX_PAYLOAD_CHARS = 512 * 1024
"""``response_payload`` is cut to this many characters: the leaderboard wants well under 4 MB."""

MAX_PARAMETERS_CHARS = 64 * 1024
MAX_MESSAGE_CHARS = 2048
MAX_NAME_CHARS = 256  # model, pipeline, error code: planning skips longer names; this is the safety net


def _storable(limit: int) -> BeforeValidator:
    # Every string of a row passes here, whoever built it (a job, or a journal line written by an
    # older version): PostgreSQL refuses NUL for ever, and a lone surrogate cannot be encoded
    # (pydantic itself refuses one, hence before its own check).
    return BeforeValidator(lambda value: storable(value, limit) if isinstance(value, str) else value)


Name = Annotated[str, _storable(MAX_NAME_CHARS)]

CAPTURE_DISABLED_PAYLOAD = '{"message":"(Job Tester) Capture Response Disabled"}'
"""What the Go tester posted for a passing job of a pipeline with ``capture_response: false``."""

__all__ = [
    "CAPTURE_DISABLED_PAYLOAD",
    "MAX_PAYLOAD_CHARS",
    "TRUNCATION_MARKER",
    "LeaderboardRow",
    "Row",
    "TranscodingRow",
    "clean_payload",
]


class ErrorEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    error_code: Name
    message: Annotated[str, _storable(MAX_MESSAGE_CHARS)]
    count: int = 1


class LeaderboardRow(BaseModel):
    """The body of one ``POST /api/post_stats`` (contract, section 7)."""

    model_config = ConfigDict(frozen=True)

    region: str
    orchestrator: str = Field(max_length=56)
    success_rate: float = Field(allow_inf_nan=False)
    round_trip_time: float = Field(allow_inf_nan=False)
    errors: list[ErrorEntry]
    timestamp: int
    model: Name = Field(min_length=1)
    pipeline: Name = Field(min_length=1)
    model_is_warm: bool
    input_parameters: Annotated[str, _storable(MAX_PARAMETERS_CHARS)]
    response_payload: Annotated[str, _storable(MAX_PAYLOAD_CHARS)]


class TranscodingRow(BaseModel):
    """The body of one ``POST /api/post_stats`` for a transcoding stream (transcoding contract §4).

    No ``model`` or ``pipeline``: a row with both is an AI row to the leaderboard.
    """

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    region: str
    orchestrator: str = Field(max_length=56)
    timestamp: int
    segments_sent: NonNegativeInt
    segments_received: NonNegativeInt
    success_rate: float = Field(ge=0, le=1)
    seg_duration: NonNegativeFloat
    upload_time: NonNegativeFloat
    download_time: NonNegativeFloat
    transcode_time: NonNegativeFloat
    round_trip_time: NonNegativeFloat
    errors: list[ErrorEntry]


Row = LeaderboardRow | TranscodingRow
RowKind = Literal["ai", "transcoding"]


def kind_of(row: Row) -> RowKind:
    """Which leaderboard row a row is (the outbox's journal says it beside each row)."""
    return "transcoding" if isinstance(row, TranscodingRow) else "ai"


def row_from(data: Any, kind: str | None) -> Row:
    """Read a stored row back; a line without a kind was written before transcoding rows existed: AI."""
    if kind == "transcoding":
        return TranscodingRow.model_validate(data)
    if kind in (None, "ai"):
        return LeaderboardRow.model_validate(data)
    raise ValueError(f"unknown row kind {kind!r}")


def labels(row: Row) -> tuple[str, str]:
    """What a row is about, as people read it: (pipeline, model), or transcoding and its renditions."""
    if isinstance(row, TranscodingRow):
        return "Transcoding", f"{row.segments_received} renditions of {row.segments_sent} segments"
    return row.pipeline, row.model


def response_payload(body: bytes, *, capture: bool, passed: bool) -> str:
    """Return the reply as the row carries it: a placeholder when capture is off and it passed.

    A failure always keeps the gateway's reply: it is what an operator disputes.
    """
    if capture or not passed:
        return clean_payload(decoded(body))
    return CAPTURE_DISABLED_PAYLOAD


def clean_payload(text: str, limit: int = MAX_PAYLOAD_CHARS) -> str:
    """Make a payload storable (see ``text.storable``) and cap its length."""
    return storable(text, limit)


def encode(row: Row) -> bytes:
    """Return the exact bytes to send (and to sign)."""
    return json.dumps(row.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False).encode()


def sign(body: bytes, secret: str) -> str:
    """Return the lower-case hex HMAC-SHA256 of ``body`` keyed with ``secret``, no prefix."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
