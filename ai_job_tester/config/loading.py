"""Loading a config file: read it, apply secrets from the environment, validate, find the test files."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..domain import routes
from ..domain.text import first_error, printable
from ..domain.transcode import MAX_SEGMENT_BYTES, MAX_SEGMENT_SECONDS, TS_PACKET, Segment, ts_problem
from ..errors import ConfigError
from ..network.probe import ffprobe, probe_file
from ..resources import TEST_SEGMENT, bundled_asset, transcode_segment
from .schema import Config, PipelineConfig, TranscodingConfig

BUNDLED_SEGMENT_SECONDS = 2.0
BUNDLED_SEGMENT_SIZE = (640, 360)
"""The bundled clip (``test-assets/make-assets.sh``, contract §5): 2 s of 640x360 at 30 fps."""

SECRET_VARIABLES = {
    "METRICS_SECRET": "metricsSecret",
    "BROADCASTER_REQUEST_TOKEN": "broadcasterRequestToken",
    "WEBHOOK_TOKEN": "webhookToken",
}
"""Environment variables that override the file's secrets, so that secrets need not sit in it."""

MAX_CONFIG_BYTES = 10 * 1024 * 1024
"""A config file larger than this is refused before it is parsed."""

MAX_NESTING = 64
"""How deep lists and objects may nest: job parameters are re-encoded for every job."""


def _too_deep(raw: Any) -> bool:
    level: list[Any] = [raw]
    for _ in range(MAX_NESTING + 1):
        level = [
            child
            for value in level
            if isinstance(value, (dict, list))
            for child in (value.values() if isinstance(value, dict) else value)
        ]
        if not level:
            return False
    return True


class _NotFinite(ValueError):
    pass


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def _no_constant(text: str) -> float:
    raise _NotFinite(text)  # NaN, Infinity, -Infinity: Python's json accepts them, JSON does not


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:  # a FIFO or /dev/zero is read no further than the cap
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; pass one with -f CONFIG") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: the config file is larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB")
    return data


def decode_config(data: bytes, *, source: Path) -> Any:
    """Decode a config file's bytes as JSON; every way it can fail is one ``ConfigError`` line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: the config file is not UTF-8 text (byte {exc.start + 1} is invalid)") from None
    try:
        return json.loads(text.removeprefix("\ufeff"), parse_float=_finite, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except _NotFinite:
        raise ConfigError(f"{source}: a number in the config file is too large or not a number") from None
    except RecursionError:
        raise ConfigError(f"{source}: the config file nests lists or objects too deeply") from None
    except ValueError:  # an integer of more than 4300 digits
        raise ConfigError(f"{source}: a number in the config file has too many digits") from None


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read, validate and resolve a config file; raise ``ConfigError`` with one clear line.

    Secrets in ``environ`` (see ``SECRET_VARIABLES``) take precedence over the file's.
    """
    return parse_config(decode_config(_read(path), source=path), source=path, environ=environ)


def parse_config(raw: Any, *, source: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Validate already-decoded JSON; relative asset paths resolve against the file's folder."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a JSON object")
    if _too_deep(raw):
        raise ConfigError(f"{source}: the config nests lists or objects more than {MAX_NESTING} levels deep")
    from_environment = {}
    for variable, key in SECRET_VARIABLES.items():
        value = (environ or {}).get(variable)
        if value:
            raw = {**raw, key: value}
            from_environment[key] = variable
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_problem(exc, from_environment)}") from None
    except RecursionError:  # a dict built in Python, nested deeper than any file could be
        raise ConfigError(f"{source}: the config nests lists or objects too deeply") from None
    paths = {}
    for index, pipeline in enumerate(config.pipelines):
        asset = _resolve_asset(pipeline, base=source.parent)
        if asset is not None:
            paths[index] = _checked(asset, pipeline.resolved_file_field, key=f"pipelines[{index}].asset", source=source)
    update: dict[str, Any] = {"asset_paths": paths}
    settings = config.transcoding_settings
    if settings is not None:
        update["transcode_segment"] = resolve_segment(settings, source=source)
    live = config.live_video
    if live is not None and live.source is not None:
        # Checked now: a missing video would otherwise fail every live job as the orchestrator's LIVE_ERROR.
        video = _checked(
            _beside(live.source, base=source.parent), "video", key="liveVideo.testVideoPath", source=source
        )
        update["live_video"] = live.model_copy(update={"source": str(video)})
    if config.state_dir is not None and not config.state_dir.is_absolute():
        update["state_dir"] = source.parent / config.state_dir
    return config.model_copy(update=update)


def resolve_segment(settings: TranscodingConfig, *, source: Path) -> Segment:
    """Find and check the segment every push sends, and learn its duration and size.

    The bundled clip's are known; a file of the user's is read with ffprobe, or needs
    ``segmentDuration`` where neither ffprobe nor ffmpeg is installed.
    """
    where = "transcoding.segmentPath"
    if settings.segment_path is None:
        path = transcode_segment()
        if path is None:
            raise ConfigError(f"{source}: {where}: the bundled test segment {TEST_SEGMENT} is not installed; "
                              "give a segment file")  # fmt: skip
        seconds = settings.segment_duration or BUNDLED_SEGMENT_SECONDS
        problem = check_segment(path)
        if problem:
            raise ConfigError(f"{source}: {where}: the bundled test segment {path} {problem}")
        return Segment(path, seconds, *BUNDLED_SEGMENT_SIZE)
    path = _beside(settings.segment_path, base=source.parent)
    problem = check_segment(path)
    if problem:
        raise ConfigError(f"{source}: {where}: test segment {printable(str(path), 200)} {problem}")
    executable = ffprobe()
    probed = probe_file(path, executable) if executable else None
    found = settings.segment_duration or (probed.duration if probed else None)
    if found is None:
        why = "neither ffprobe nor ffmpeg is installed to read it" if executable is None else "it could not be probed"
        raise ConfigError(f"{source}: transcoding.segmentDuration: give the duration of {path} in seconds ({why})")
    if found > MAX_SEGMENT_SECONDS:
        raise ConfigError(f"{source}: {where}: test segment {path} lasts {found:g} s; a gateway takes 300 s at most")
    return Segment(path, found, probed.width if probed else None, probed.height if probed else None)


def check_segment(path: Path) -> str | None:
    """Why a file cannot be pushed as a segment (missing, empty, too large, not MPEG-TS), or None when it can."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(TS_PACKET * 8)
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    except ValueError as exc:  # a name the file system cannot take
        return f"cannot be read ({exc})"
    if size == 0:
        return "is empty"
    if size > MAX_SEGMENT_BYTES:
        return f"is larger than the {MAX_SEGMENT_BYTES // 1_000_000} MB a gateway takes"
    if size % TS_PACKET:
        return f"is {size} bytes, not whole {TS_PACKET}-byte MPEG-TS packets (the route takes .ts segments)"
    return ts_problem(head)  # its first packets: the rest is the orchestrator's to decode


MAX_AUDIO_BYTES = 50 * 1024 * 1024

_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
_AUDIO_MAGIC = (b"RIFF", b"ID3", b"OggS", b"fLaC", b"\x1a\x45\xdf\xa3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")


def _checked(path: Path, file_field: str, *, key: str, source: Path) -> Path:
    problem = check_asset(path, file_field)
    if problem:
        # The path is the file's own text, up to 4096 characters: cut it to keep the line readable.
        raise ConfigError(f"{source}: {key}: test file {printable(str(path), 200)} {problem}")
    return path


def check_asset(path: Path, file_field: str) -> str | None:
    """Return why a test file cannot be sent (missing, empty, wrong kind), or None when it can.

    Only ``audio`` and ``image`` files are checked by their leading bytes (ffmpeg reads any video).
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(12)
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:  # also a name longer than the file system takes
        return f"cannot be read ({exc.strerror or exc})"
    except ValueError:  # the schema refuses NUL; a path built in Python may still hold one
        return "is not a usable path (it contains a NUL character)"
    if size == 0:
        return "is empty"
    if file_field == "audio":
        if size > MAX_AUDIO_BYTES:
            return "is larger than the 50 MiB an orchestrator accepts"
        if not (head.startswith(_AUDIO_MAGIC) or head[4:8] == b"ftyp"):
            return "is not a known audio container (MP4, WAV, MP3, Ogg, FLAC or WebM)"
    elif file_field == "image" and not head.startswith(_IMAGE_MAGIC):
        return "is not a PNG, JPEG or GIF image (the orchestrator prices only those)"
    return None


def _resolve_asset(pipeline: PipelineConfig, *, base: Path) -> Path | None:
    if pipeline.is_live or pipeline.content_type != "multipart/form-data":
        return None
    if pipeline.asset is None:
        name = routes.default_asset(pipeline.route)
        if name is None:
            return None
        return bundled_asset(name) or Path("test-assets") / name
    return _beside(pipeline.asset, base=base)


def _beside(name: str, *, base: Path) -> Path:
    """Resolve a configured file name: as given when absolute, else beside the config, else in the current folder."""
    candidate = Path(name)
    with contextlib.suppress(RuntimeError):  # ~someone who does not exist: left as is, reported as missing
        candidate = candidate.expanduser()
    if candidate.is_absolute():
        return candidate
    beside_config = base / candidate
    try:
        found = beside_config.exists()
    except (OSError, ValueError):  # a name too long for the file system: check_asset says so
        found = True
    return beside_config if found else Path.cwd() / candidate


_HINTS = {
    "extra_forbidden": "unknown key (check its spelling against the README's config reference)",
    "missing": "required key is missing",
}


def _first_problem(exc: ValidationError, from_environment: Mapping[str, str]) -> str:
    # One line: the first problem names the field; the count says whether more follow.
    where, message = first_error(exc, hints=_HINTS)
    if where in from_environment:
        where += f" (from {from_environment[where]})"
    where = printable(where, 120)  # an unknown key is the file's own text: keep it one inert line
    message = printable(message, 300)  # pydantic's or a validator's: never more than one short line
    if exc.error_count() > 1:
        message += f" (and {exc.error_count() - 1} more problem(s))"
    return f"{where}: {message}" if where else message
