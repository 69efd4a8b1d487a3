"""Success bodies a real gateway returns for each route, and the media it serves."""

from __future__ import annotations

import hashlib
import json
import struct
import time
import uuid
import zlib
from typing import Any

from .scenario import Fault


def request_digest(route: str, model: str, params: dict[str, Any]) -> bytes:
    """What a real model's output depends on: the route, the model and every field sent (seed, prompt…)."""
    canonical = json.dumps({"route": route, "model": model, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).digest()


# Small valid files of each kind whose bytes come from the request, as a model's would.
def png(digest: bytes) -> bytes:
    """A 1×1 PNG coloured by the digest, which it also carries in a text chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"tEXt", b"Comment\x00" + digest.hex().encode())
        + chunk(b"IDAT", zlib.compress(b"\x00" + digest[:3]))
        + chunk(b"IEND", b"")
    )


def mp4(digest: bytes) -> bytes:
    """An ``ftyp`` box and a ``free`` box holding the digest."""
    return b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + struct.pack(">I", 8 + len(digest)) + b"free" + digest


def wav(digest: bytes) -> bytes:
    """A mono 16-bit WAV whose samples are the digest's bytes."""
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    return (
        b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(digest)) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"data" + struct.pack("<I", len(digest)) + digest
    )  # fmt: skip


_WORDS = (
    "amber", "basalt", "cedar", "delta", "ember", "fjord", "granite", "harbor", "indigo", "juniper", "kelp",
    "lagoon", "meadow", "nectar", "orchid", "pebble", "quartz", "river", "saffron", "tundra", "umber", "violet",
    "willow", "xenon", "yarrow", "zephyr", "birch", "coral", "dune", "fern", "glacier", "heather",
)  # fmt: skip


def words(digest: bytes, count: int = 10) -> str:
    """Words chosen by the digest: text that differs whenever the request does."""
    return " ".join(_WORDS[byte % len(_WORDS)] for byte in digest[:count])


def success_body(route: str, model: str, params: dict[str, Any], media: dict[str, bytes]) -> tuple[bytes, str]:
    """Return (body, content type) of a successful reply; media URLs are stored in ``media``.

    Outputs depend on the request, as a real model's do: two requests with different seeds
    or prompts get different bytes and different text.
    """
    digest = request_digest(route, model, params)
    if route in ("text-to-image", "image-to-image", "upscale", "image-to-video"):
        kind, data = (".mp4", mp4(digest)) if route == "image-to-video" else (".png", png(digest))
        url = _store(media, kind, data)
        return _json({"images": [{"url": url, "seed": _seed(params), "nsfw": False}]})
    if route == "audio-to-text":
        text = f"livepeer job tester, {words(digest, 4)}"
        return _json({"text": text, "chunks": [{"timestamp": [0.0, 1.2], "text": text}]})
    if route == "segment-anything-2":
        return _json({"masks": "[[[0, 1]]]", "scores": "[0.98]", "logits": "[[[0.1, 0.9]]]"})
    if route == "image-to-text":
        return _json({"text": f"a test pattern of coloured bars, with shapes like {words(digest)}"})
    if route == "text-to-speech":
        return _json({"audio": {"url": _store(media, ".wav", wav(digest))}})
    if route == "llm":
        return _llm(model, params, digest)
    return _json({"result": "ok"})


def _seed(params: dict[str, Any]) -> int:
    try:
        return int(params.get("seed", 0))
    except (TypeError, ValueError):
        return 0


def spoil(fault: Fault, body: bytes, media: dict[str, bytes], *, elsewhere: str = "http://localhost") -> bytes:
    """Apply an output fault to a good reply: lose or corrupt its media, or break its stream.

    ``elsewhere`` is the origin ``Fault.FOREIGN_MEDIA`` points the media at: the gateway
    itself under another host name, so whether it is fetched depends on ``mediaHosts`` alone.
    """
    if fault is Fault.FOREIGN_MEDIA:
        return body.replace(b'"/stream/', b'"' + elsewhere.encode() + b"/stream/")
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


def _llm(model: str, params: dict[str, Any], digest: bytes) -> tuple[bytes, str]:
    answer = f"An Ethereum address has 42 characters: 0x and 40 hex digits, as in {words(digest)}."
    if "messages" not in params:  # the pre-0.8.3 multipart form
        return _json({"response": answer, "tokens_used": 12})
    created = int(time.time())
    if params.get("stream") in (True, "true"):
        chunks = [
            {
                "id": "sim",
                "model": model,
                "created": created,
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": f"{word} "}, "finish_reason": ""}],
            }
            for word in answer.split(" ")
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
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
        }
    )


def _store(media: dict[str, bytes], suffix: str, data: bytes) -> str:
    url = f"/stream/{uuid.uuid4().hex[:12]}/0{suffix}"
    media[url] = data
    return url


def _json(data: Any) -> tuple[bytes, str]:
    return json.dumps(data).encode(), "application/json"
