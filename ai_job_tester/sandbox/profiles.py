"""Video profiles as a go-livepeer gateway reads them (livepeer-transcoding-contract.md §1.1, §5).

The ``Livepeer-Transcode-Configuration`` header is decoded the way Go's ``encoding/json``
decodes it into the gateway's struct: keys matched case-insensitively, unknown keys ignored,
``null`` leaves a field at its zero value, and a value of the wrong JSON type fails the whole
header. Then presets (unknown names dropped) and profiles resolve to the stream's renditions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

HEADER = "Livepeer-Transcode-Configuration"


@dataclass(frozen=True, slots=True)
class Profile:
    """One rendition a stream asks for."""

    name: str
    width: int
    height: int
    bitrate: int  # bits per second
    fps: int = 0  # 0 keeps the source's rate
    fps_den: int = 0
    gop: str = ""  # seconds, "intra" or "" for the encoder's default


def _preset(name: str, width: int, height: int, kbits: int, fps: int) -> tuple[str, Profile]:
    return name, Profile(name, width, height, kbits * 1000, fps)


# The gateway's own copy of lpms's table, kept apart from the tester's (domain/transcode.py) on purpose:
# a mistake in the tester's table must show up as a failed test, not be mirrored by the simulator.
PRESETS: dict[str, Profile] = dict(
    (
        _preset("P720p60fps16x9", 1280, 720, 6000, 60),
        _preset("P720p30fps16x9", 1280, 720, 4000, 30),
        _preset("P720p25fps16x9", 1280, 720, 3500, 25),
        _preset("P720p30fps4x3", 960, 720, 3500, 30),
        _preset("P576p30fps16x9", 1024, 576, 1500, 30),
        _preset("P576p25fps16x9", 1024, 576, 1500, 25),
        _preset("P360p30fps16x9", 640, 360, 1200, 30),
        _preset("P360p25fps16x9", 640, 360, 1000, 25),
        _preset("P360p30fps4x3", 480, 360, 1000, 30),
        _preset("P240p30fps16x9", 426, 240, 600, 30),
        _preset("P240p25fps16x9", 426, 240, 600, 25),
        _preset("P240p30fps4x3", 320, 240, 600, 30),
        _preset("P144p30fps16x9", 256, 144, 400, 30),
        # P144p25fps16x9 is defined in lpms but missing from its lookup: naming it drops it.
    )
)
DEFAULT_PROFILES: tuple[Profile, ...] = (PRESETS["P240p30fps16x9"], PRESETS["P360p30fps16x9"])
"""The gateway's default ``-transcodingOptions``."""


class HeaderError(ValueError):
    """The header is not JSON the gateway's struct accepts: the push is answered 400."""


class ProfileError(ValueError):
    """A profile value lpms refuses: creating the stream fails, the push is answered 500."""


@dataclass(frozen=True, slots=True)
class TranscodeConfig:
    """What the header asks of a new stream; ``profiles`` is None when the key is absent or null."""

    presets: tuple[str, ...] = ()
    profiles: tuple[dict[str, Any], ...] | None = None


# Go field types, by the JSON key lower-cased (encoding/json matches keys case-insensitively).
_TOP: dict[str, tuple[str, str]] = {
    "manifestid": ("manifestID", "string"),
    "streamid": ("streamID", "string"),
    "sessionid": ("sessionID", "string"),
    "streamkey": ("streamKey", "string"),
    "presets": ("presets", "[]string"),
    "profiles": ("profiles", "[]JsonProfile"),
    "objectstore": ("objectStore", "string"),
    "recordobjectstore": ("recordObjectStore", "string"),
    "recordobjectstoreurl": ("recordObjectStoreUrl", "string"),
    "previoussessions": ("previousSessions", "[]string"),
    "verificationfreq": ("verificationFreq", "uint"),
    "timeoutmultiplier": ("timeoutMultiplier", "int"),
    "forcesessionreinit": ("forceSessionReinit", "bool"),
}
_PROFILE: dict[str, tuple[str, str]] = {
    "name": ("name", "string"),
    "width": ("width", "int"),
    "height": ("height", "int"),
    "bitrate": ("bitrate", "int"),
    "fps": ("fps", "uint"),
    "fpsden": ("fpsDen", "uint"),
    "profile": ("profile", "string"),
    "gop": ("gop", "string"),
    "encoder": ("encoder", "string"),
    "colordepth": ("colorDepth", "int"),
    "chromaformat": ("chromaFormat", "int"),
    "quality": ("quality", "uint"),
}
_H264_PROFILES = {"", "none", "h264baseline", "h264main", "h264high", "h264constrainedhigh"}
_ENCODERS = {"", "H.264", "HEVC", "VP8", "VP9"}  # exact: "h264" is an error


def parse_header(value: str | None) -> TranscodeConfig:
    """Decode the header's value; absent or empty asks for nothing. Raises HeaderError."""
    if not value:
        return TranscodeConfig()
    try:
        data = json.loads(value, parse_constant=_no_constants)
    except ValueError as exc:
        raise HeaderError(str(exc)) from None
    if data is None:
        return TranscodeConfig()
    if not isinstance(data, dict):
        raise HeaderError(f"json: cannot unmarshal {_json_kind(data)} into Go value of type server.authWebhookResponse")
    fields = _decode_object(data, _TOP, "authWebhookResponse")
    profiles = fields.get("profiles")
    return TranscodeConfig(
        presets=tuple(fields.get("presets") or ()),
        profiles=None if profiles is None else tuple(profiles),
    )


def resolve(config: TranscodeConfig, default: Sequence[Profile] = DEFAULT_PROFILES) -> tuple[Profile, ...]:
    """The stream's renditions: known presets, then profiles; the default only when neither is given."""
    if config.profiles is None and not config.presets:
        return tuple(default)
    chosen = [PRESETS[name] for name in config.presets if name in PRESETS]
    chosen += [_from_json(raw) for raw in config.profiles or ()]
    return tuple(chosen)


def _from_json(raw: dict[str, Any]) -> Profile:
    width, height, bitrate = raw.get("width", 0), raw.get("height", 0), raw.get("bitrate", 0)
    if str(raw.get("profile", "")).lower() not in _H264_PROFILES:
        raise ProfileError(f"unknown VideoProfile profile name: {raw['profile']}")
    if raw.get("encoder", "") not in _ENCODERS:
        raise ProfileError(f"unknown codec: {raw['encoder']}")
    gop = str(raw.get("gop", ""))
    if gop not in ("", "intra"):
        try:
            seconds = float(gop)
        except ValueError:
            raise ProfileError(f"invalid gop: {gop}") from None
        if not math.isfinite(seconds) or seconds < 0:
            raise ProfileError(f"invalid gop: {gop}")
    name = str(raw.get("name") or f"custom_{width}x{height}_{bitrate}")
    return Profile(name, width, height, bitrate, raw.get("fps", 0), raw.get("fpsDen", 0), gop)


def _decode_object(data: dict[str, Any], spec: dict[str, tuple[str, str]], struct: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in data.items():
        known = spec.get(key.lower())
        if known is None or value is None:
            continue  # Go ignores unknown keys and leaves a field at zero for null
        name, kind = known
        fields[name] = _decode_value(value, kind, f"{struct}.{name}")
    return fields


def _decode_value(value: Any, kind: str, where: str) -> Any:
    if kind == "[]JsonProfile":
        items = _expect_list(value, kind, where)
        out: list[dict[str, Any]] = []
        for item in items:
            if item is None:
                out.append({})
                continue
            if not isinstance(item, dict):
                raise _type_error(item, "ffmpeg.JsonProfile", where)
            out.append(_decode_object(item, _PROFILE, f"JsonProfile.{where.split('.', 1)[1]}"))
        return out
    if kind == "[]string":
        items = _expect_list(value, kind, where)
        return ["" if item is None else _decode_value(item, "string", where) for item in items]
    if kind == "string":
        if not isinstance(value, str):
            raise _type_error(value, "string", where)
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise _type_error(value, "bool", where)
        return value
    # int and uint: a JSON number literal without fraction or exponent, in range.
    if not isinstance(value, int) or isinstance(value, bool) or (kind == "uint" and value < 0):
        raise _type_error(value, kind, where)
    if not -(2**63) <= value < 2**64:
        raise _type_error(value, kind, where)
    return value


def _expect_list(value: Any, kind: str, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _type_error(value, kind, where)
    return value


def _type_error(value: Any, go_type: str, where: str) -> HeaderError:
    shown = _json_kind(value)
    if shown == "number":
        shown = f"number {json.dumps(value)}"
    return HeaderError(f"json: cannot unmarshal {shown} into Go struct field {where} of type {go_type}")


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _no_constants(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")
