"""Varying each test job so that no cache can answer it, while the work stays the same size. Pure.

An orchestrator that recognised the tester's request (the same prompt, image and seed every
cycle) could answer from a cache and never run the model. So each job gets what a cache
would key on made fresh: a random ``seed`` on the routes that take one, and a short random
suffix on the text a model reads (prompt, LLM question, text to speak). A suffix of a few
characters changes neither the image size, the number of steps nor the number of tokens
asked for in any way that matters. The random source is passed in, so tests are repeatable.

Image and audio inputs stay as they are: changing a byte of a PNG, JPEG or MP4 means
re-encoding it (its size changes, a checksum breaks); the seed and the prompt already make
every request that produces media different.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

SEED_ROUTES = frozenset({"text-to-image", "image-to-image", "image-to-video", "upscale"})
"""The routes whose request takes a ``seed`` (the gateway's OpenAPI description)."""

TEXT_FIELDS: Mapping[str, str] = {
    "text-to-image": "prompt",
    "image-to-image": "prompt",
    "upscale": "prompt",
    "image-to-text": "prompt",
    "text-to-speech": "text",
    "llm": "prompt",  # the pre-0.8.3 multipart form; the JSON form varies its last user message
}
"""The field of each route that a model reads as text, when the config gives one."""

SEED_BITS = 31  # the runners read the seed as an integer; below 2**31 fits every one of them
TOKEN_BITS = 32  # eight hex digits: a cache never sees the same suffix twice in practice


class Chance(Protocol):
    """Where randomness comes from: ``random.SystemRandom()`` in a run, a seeded ``random.Random`` in tests."""

    def getrandbits(self, k: int, /) -> int: ...


@dataclass(frozen=True, slots=True)
class Varied:
    """A job's parameters as sent, and which of them were made fresh for this job."""

    parameters: dict[str, Any]
    seeded: bool = False  # a fresh random seed
    texts: tuple[str, ...] = ()  # the fields whose text got a fresh suffix ("messages" for the JSON /llm)

    @property
    def fresh(self) -> bool:
        """The request differs from every earlier one: identical outputs would be evidence of a replay."""
        return self.seeded or bool(self.texts)


def suffix(token: int) -> str:
    """The text appended to a prompt: short, plain, and different for every job."""
    return f" (ref {token:08x})"


def vary(route: str, parameters: Mapping[str, Any], chance: Chance) -> Varied:
    """Return ``parameters`` with a fresh seed and fresh text suffixes where ``route`` takes them.

    A text field is varied only when the config gives it as a string: nothing the config
    left out is added. A seed the config gives is replaced (``vary: false`` keeps it).
    """
    varied = dict(parameters)
    seeded = route in SEED_ROUTES
    if seeded:
        varied["seed"] = chance.getrandbits(SEED_BITS)
    texts: list[str] = []
    field = TEXT_FIELDS.get(route)
    if field is not None and isinstance(varied.get(field), str):
        varied[field] = varied[field] + suffix(chance.getrandbits(TOKEN_BITS))
        texts.append(field)
    if route == "llm" and isinstance(varied.get("messages"), list):
        messages = _vary_last_user_message(varied["messages"], chance)
        if messages is not None:
            varied["messages"] = messages
            texts.append("messages")
    return Varied(varied, seeded=seeded, texts=tuple(texts))


def unvaried(parameters: Mapping[str, Any]) -> Varied:
    """The parameters as configured (``vary: false``): the same request every time."""
    return Varied(dict(parameters))


def _vary_last_user_message(messages: list[Any], chance: Chance) -> list[Any] | None:
    """A copy of ``messages`` whose last user message has a suffix; None when there is no such message."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, dict) and message.get("role") == "user" and isinstance(message.get("content"), str):
            changed = {**message, "content": message["content"] + suffix(chance.getrandbits(TOKEN_BITS))}
            return [*messages[:index], changed, *messages[index + 1 :]]
    return None
