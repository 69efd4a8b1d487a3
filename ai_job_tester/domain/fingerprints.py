"""Fingerprints of outputs, and the index that catches one answered to two different requests. Pure.

Every job's request is fresh (see ``variation``): a new seed, a new suffix on its text. A
model's output follows its request, so two different requests that come back with
byte-identical media, or with the same long text, mean that one of them was answered
from a cache: the later one, which could have been computed and was not.

What is never evidence, and is never compared:

- a request that was not fresh (``vary: false``, or a route with nothing to vary such as
  audio-to-text with its fixed clip): the same request may well get the same answer;
- an image the reply marks ``nsfw``: a safety filter answers with the same stand-in;
- text shorter than ``MIN_TEXT_CHARS`` once normalised ("Yes.", "a cat"), or from an LLM
  asked to decode greedily (``temperature`` 0, ``top_k`` 1): such answers repeat honestly;
- text when only the seed was fresh: text routes take no seed.

The index itself is not thread-safe; ``cycle.replays`` serialises the lanes around it.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

MIN_TEXT_CHARS = 64
"""Shorter normalised text is not compared: two honest answers to different questions can share it."""

REPLAYED_OUTPUT = "REPLAYED_OUTPUT"


class Kind(StrEnum):
    MEDIA = "media"  # the SHA-256 of the media's bytes
    TEXT = "text"  # the SHA-256 of the reply's normalised text


@dataclass(frozen=True, slots=True)
class Sighting:
    """An output seen once: whose it was, when, and for which request."""

    kind: Kind
    digest: str
    orchestrator: str
    pipeline: str
    model: str
    at: int  # the job's start, Unix seconds
    request: str  # the request's fingerprint: the same request may get the same output

    def named(self) -> str:
        """The earlier job, as a message names it."""
        when = datetime.fromtimestamp(self.at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{self.orchestrator}'s {self.pipeline} / {self.model} job at {when}"


@dataclass(frozen=True, slots=True)
class Tally:
    """Outputs compared and replays found, over the state directory's life (for the metrics' counters)."""

    checked: int = 0
    replayed: int = 0

    def plus(self, *, checked: int, replayed: int) -> Tally:
        return Tally(self.checked + checked, self.replayed + replayed)


def normalised(text: str) -> str:
    """The text as compared: Unicode-normalised, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def text_digest(text: str) -> str | None:
    """The fingerprint of a reply's text, or None when it is too short to mean anything."""
    flat = normalised(text)
    if len(flat) < MIN_TEXT_CHARS:
        return None
    return hashlib.sha256(flat.encode("utf-8", errors="replace")).hexdigest()


def request_digest(route: str, input_parameters: str) -> str:
    """The fingerprint of a request: its route and exactly the fields it sent."""
    return hashlib.sha256(f"{route}\n{input_parameters}".encode("utf-8", errors="replace")).hexdigest()[:32]


def decodes_greedily(parameters: Mapping[str, Any]) -> bool:
    """An LLM asked for its single likeliest answer: the same question, reworded a little, may get the same text."""
    temperature, top_k = parameters.get("temperature"), parameters.get("top_k")
    return _number(temperature) == 0 or _number(top_k) == 1


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else None
    except ValueError:
        return None


def replay_message(kind: Kind, earlier: Sighting) -> str:
    """The REPLAYED_OUTPUT message: what matched, and the earlier job it matched."""
    what = "media are byte-identical to" if kind is Kind.MEDIA else "reply text is identical to that of"
    return (
        f"the {what} {earlier.named()}, which had a different request (seed or prompt): "
        "answered from a cache, not computed"
    )


class FingerprintIndex:
    """Every output fingerprint seen, each with its first sighting."""

    def __init__(self, sightings: Iterable[Sighting] = ()) -> None:
        self._first: dict[tuple[Kind, str], Sighting] = {}
        for sighting in sightings:
            self._first.setdefault((sighting.kind, sighting.digest), sighting)

    def __len__(self) -> int:
        return len(self._first)

    def sight(self, sighting: Sighting) -> Sighting | None:
        """Remember ``sighting``; return the earlier one it replays (same output, another request), or None."""
        earlier = self._first.setdefault((sighting.kind, sighting.digest), sighting)
        if earlier is sighting or earlier.request == sighting.request:
            return None
        return earlier

    def recent(self, *, now: int, keep_seconds: int, limit: int) -> list[Sighting]:
        """The sightings worth keeping: those of the last ``keep_seconds``, the newest ``limit`` of them."""
        kept = [s for s in self._first.values() if now - s.at <= keep_seconds]
        kept.sort(key=lambda s: s.at)
        return kept[-limit:] if limit > 0 else []
