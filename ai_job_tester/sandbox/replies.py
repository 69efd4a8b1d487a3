"""Success bodies a real gateway returns for each route, and the media it serves."""

from __future__ import annotations

import json
import struct
import time
import uuid
import zlib
from typing import Any

from .scenario import Fault


# Smallest valid files of each kind: enough for a media check to recognise them.
def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


PNG_BYTES = _png()
MP4_BYTES = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00\x00\x00\x08free"
WAV_BYTES = (
    b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00"
    b"@\x1f\x00\x00\x80>\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00"
)


def success_body(route: str, model: str, params: dict[str, Any], media: dict[str, bytes]) -> tuple[bytes, str]:
    """Return (body, content type) of a successful reply; media URLs are stored in ``media``."""
    if route in ("text-to-image", "image-to-image", "upscale", "image-to-video"):
        kind, data = (".mp4", MP4_BYTES) if route == "image-to-video" else (".png", PNG_BYTES)
        url = _store(media, kind, data)
        return _json({"images": [{"url": url, "seed": 1234, "nsfw": False}]})
    if route == "audio-to-text":
        return _json(
            {"text": "livepeer job tester", "chunks": [{"timestamp": [0.0, 1.2], "text": "livepeer job tester"}]}
        )
    if route == "segment-anything-2":
        return _json({"masks": "[[[0, 1]]]", "scores": "[0.98]", "logits": "[[[0.1, 0.9]]]"})
    if route == "image-to-text":
        return _json({"text": "a test pattern"})
    if route == "text-to-speech":
        return _json({"audio": {"url": _store(media, ".wav", WAV_BYTES)}})
    if route == "llm":
        return _llm(model, params)
    return _json({"result": "ok"})


def spoil(fault: Fault, body: bytes, media: dict[str, bytes]) -> bytes:
    """Apply an output fault to a good reply: lose or corrupt its media, or break its stream."""
    if fault is Fault.MISSING_MEDIA:
        media.clear()
    elif fault is Fault.WRONG_MEDIA:
        for url in media:
            media[url] = b"<html><body>not found</body></html>"
    elif fault is Fault.STREAM_NO_FINISH:
        return body[: body.rindex(b"data:")]
    elif fault is Fault.STREAM_ERROR:
        return body[: body.rindex(b"data:")] + b'data: {"error": {"message": "runner out of memory"}}\n\n'
    return body


def _llm(model: str, params: dict[str, Any]) -> tuple[bytes, str]:
    if "messages" not in params:  # the pre-0.8.3 multipart form
        return _json({"response": "42 characters", "tokens_used": 12})
    created = int(time.time())
    if params.get("stream") in (True, "true"):
        chunks = [
            {
                "id": "sim",
                "model": model,
                "created": created,
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": word}, "finish_reason": ""}],
            }
            for word in ("42 ", "characters")
        ]
        chunks.append(
            {
                "id": "sim",
                "model": model,
                "created": created,
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": "stop"}],
            }
        )
        body = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks)
        return body.encode(), "text/event-stream"
    return _json(
        {
            "id": "sim",
            "model": model,
            "created": created,
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "42 characters"}, "finish_reason": "stop"}
            ],
        }
    )


def _store(media: dict[str, bytes], suffix: str, data: bytes) -> str:
    url = f"/stream/{uuid.uuid4().hex[:12]}/0{suffix}"
    media[url] = data
    return url


def _json(data: Any) -> tuple[bytes, str]:
    return json.dumps(data).encode(), "application/json"
