"""Reading an LLM's server-sent event stream as it arrives. Pure: the caller passes the clock.

The gateway sends ``data: <json>`` lines and stops after the chunk whose
``finish_reason`` is non-empty; there is no ``[DONE]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .text import loads_untrusted

MAX_LINE_BYTES = 1024 * 1024
"""A stream line longer than this is not an LLM chunk: it is dropped, keeping memory bounded."""


@dataclass(frozen=True, slots=True)
class StreamStats:
    """What a finished stream showed: when the first token came, how many, and how it ended."""

    first_token_at: float | None  # seconds after the request started
    tokens: int
    finished: bool
    error: str | None
    generation_seconds: float | None  # first token to last byte

    @property
    def tokens_per_second(self) -> float | None:
        if not self.generation_seconds or self.tokens < 2:
            return None
        return (self.tokens - 1) / self.generation_seconds


class StreamMeter:
    """Fed the reply's bytes with the time each piece arrived; keeps no more than one line."""

    def __init__(self, started: float) -> None:
        self._started = started
        self._pending = b""
        self._first_token: float | None = None
        self._last: float = started
        self._tokens = 0
        self._usage_tokens: int | None = None
        self._finished = False
        self._error: str | None = None

    def feed(self, chunk: bytes, now: float) -> None:
        self._last = now
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        if len(self._pending) > MAX_LINE_BYTES:
            self._pending = b""
            self._error = self._error or f"a stream line longer than {MAX_LINE_BYTES} bytes"
        for line in lines:
            self._line(line.strip(), now)

    def stats(self) -> StreamStats:
        if self._pending.strip():
            self._line(self._pending.strip(), self._last)
            self._pending = b""
        tokens = self._usage_tokens if self._usage_tokens is not None else self._tokens
        first = None if self._first_token is None else self._first_token - self._started
        generation = None if self._first_token is None else self._last - self._first_token
        return StreamStats(first, tokens, self._finished, self._error, generation)

    def _line(self, line: bytes, now: float) -> None:
        if not line.startswith(b"data:"):
            return
        try:
            chunk = loads_untrusted(line[5:])
        except ValueError:
            return
        if not isinstance(chunk, dict):
            return
        if "error" in chunk:
            self._error = _error_text(chunk["error"])
            return
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or choice.get("message") or {}
            if isinstance(delta, dict) and delta.get("content"):
                self._tokens += 1
                if self._first_token is None:
                    self._first_token = now
            if choice.get("finish_reason"):
                self._finished = True
        usage = chunk.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self._usage_tokens = usage["completion_tokens"]


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)
