"""The success body each route must return (contract, section 5).

A 2xx is not proof of success: a gateway can answer 200 with an empty body. Each
check returns None when the body has the right shape, or a short reason when not.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .text import NestedTooDeep, first_error, loads_untrusted


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Media(_Reply):
    url: str = Field(min_length=1)


class ImagesReply(_Reply):
    images: list[_Media] = Field(min_length=1)


class TranscriptReply(_Reply):
    text: str
    chunks: list[dict[str, Any]]


class MasksReply(_Reply):
    masks: str
    scores: str
    logits: str


class TextReply(_Reply):
    text: str


class AudioReply(_Reply):
    audio: _Media


class _LLMMessage(_Reply):
    content: str


class _LLMChoice(_Reply):
    message: _LLMMessage


class LLMReply(_Reply):
    choices: list[_LLMChoice] = Field(min_length=1)


class LegacyLLMReply(_Reply):
    response: str


_SHAPES: dict[str, tuple[type[_Reply], ...]] = {
    "text-to-image": (ImagesReply,),
    "image-to-image": (ImagesReply,),
    "image-to-video": (ImagesReply,),
    "upscale": (ImagesReply,),
    "audio-to-text": (TranscriptReply,),
    "segment-anything-2": (MasksReply,),
    "llm": (LLMReply, LegacyLLMReply),
    "image-to-text": (TextReply,),
    "text-to-speech": (AudioReply,),
}


def check_reply(route: str, body: bytes) -> str | None:
    """Return None when ``body`` is a success reply for ``route``, else why it is not."""
    if not body.strip():
        return "the reply body is empty"
    try:
        data = loads_untrusted(body)
    except NestedTooDeep as exc:
        return f"the reply is not JSON the tester accepts ({exc})"
    except ValueError:
        return "the reply is not JSON"
    shapes = _SHAPES.get(route)
    if shapes is None:  # a route this tester does not know yet: any non-empty object will do
        return None if isinstance(data, dict) and data else "the reply is not a non-empty JSON object"
    problems = [_problem(shape, data) for shape in shapes]
    return None if None in problems else problems[0]


def _problem(shape: type[_Reply], data: Any) -> str | None:
    try:
        shape.model_validate(data)
    except ValidationError as exc:
        where, message = first_error(exc)
        return f"the reply does not have the expected shape: {where or 'the reply'}: {message}"
    return None
