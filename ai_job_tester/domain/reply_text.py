"""The text a model wrote in a reply (an LLM's answer, a caption, a transcript), for the replay check. Pure."""

from __future__ import annotations

from typing import Any

from .text import loads_object

TEXT_ROUTES = frozenset({"llm", "image-to-text", "audio-to-text"})


def reply_text(route: str, body: bytes) -> str | None:
    """Return the text the reply carries, or None when the route has none or the body holds none."""
    if route not in TEXT_ROUTES:
        return None
    if route == "llm" and body.lstrip().startswith(b"data:"):
        return _streamed(body)
    data = loads_object(body)
    if data is None:
        return None
    if route != "llm":
        return _string(data.get("text"))
    if "response" in data:  # the pre-0.8.3 form
        return _string(data.get("response"))
    choices = data.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    return _string(message.get("content")) if isinstance(message, dict) else None


def _streamed(body: bytes) -> str | None:
    """Join the content of every ``data:`` chunk of an event stream (the first choice's)."""
    parts: list[str] = []
    for line in body.split(b"\n"):
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        chunk = loads_object(line[5:])
        choices = chunk.get("choices") if chunk is not None else None
        first = choices[0] if isinstance(choices, list) and choices else None
        delta = (first.get("delta") or first.get("message")) if isinstance(first, dict) else None
        content = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(content, str):
            parts.append(content)
    return "".join(parts) or None


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
