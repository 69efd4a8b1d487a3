"""A simulated leaderboard API that behaves like the real one (livepeer-contract.md §7.1).

leaderboard-serverless on PostgreSQL: HMAC of the exact bytes; Go's JSON types; 400 for an
unknown region; 500 (for ever) for a NUL anywhere in the row or an orchestrator longer than
56 characters; a lone surrogate stored as U+FFFD; an error body followed by ``ok``; rows of a
region that exists only for transcoding silently dropped; every window by insert time.

A row is AI only when both ``model`` and ``pipeline`` are non-empty; any other row is a
transcoding row (livepeer-transcoding-contract.md §4), kept apart in ``transcoding_rows`` and
scored by ``transcoding_stats``. Keys a row leaves out decode as Go's zero values.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import statistics
import threading
import time
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from ._http import QuietHandler, ServerThread

_AI_REGIONS = ("GLOBAL", "MDW", "FRA", "LAX")
_TRANSCODING_ONLY = ("ATL", "ATL2", "HOU", "LON", "MAD", "MIA", "MOS2", "ASH", "NYC", "PRG", "SJO", "SAO", "SEA",
                     "SIN", "STO", "SYD", "HND", "TOR")  # fmt: skip
DEFAULT_REGIONS: dict[str, tuple[str, ...]] = {
    **{region: ("ai", "transcoding") for region in _AI_REGIONS},
    **{region: ("transcoding",) for region in _TRANSCODING_ONLY},
}
"""The real leaderboard's 26 entries: 4 AI regions (also transcoding) and 18 transcoding-only ones."""

MAX_ORCHESTRATOR = 56  # VARCHAR(56)
NUL_REFUSED = "ERROR: unsupported Unicode escape sequence (SQLSTATE 22P05)"
DEFAULT_WINDOW_SECONDS = 24 * 3600  # START_TIME_WINDOW


class _StrictError(BaseModel):
    model_config = ConfigDict(extra="ignore")
    error_code: StrictStr
    message: StrictStr = ""
    count: StrictInt


class StoredRow(BaseModel):
    """A row as the leaderboard's Go decoder accepts it (numbers may be ints or floats; unknown keys ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    region: StrictStr
    orchestrator: StrictStr
    success_rate: StrictFloat | StrictInt
    round_trip_time: StrictFloat | StrictInt
    errors: list[_StrictError] | None = None
    timestamp: StrictInt
    model: StrictStr
    pipeline: StrictStr
    model_is_warm: StrictBool
    input_parameters: StrictStr
    response_payload: StrictStr
    event_time: float = 0.0  # set by the leaderboard: when the row arrived (windows use it, not timestamp)


class _GoStats(BaseModel):
    """Every field of the Go struct with its JSON type: one decode checks them all, whatever the row's kind."""

    model_config = ConfigDict(extra="ignore")
    region: StrictStr = ""
    orchestrator: StrictStr = ""
    success_rate: StrictFloat | StrictInt = 0
    round_trip_time: StrictFloat | StrictInt = 0
    errors: list[_StrictError] | None = None
    timestamp: StrictInt = 0
    model: StrictStr = ""
    pipeline: StrictStr = ""
    model_is_warm: StrictBool = False
    input_parameters: StrictStr = ""
    response_payload: StrictStr = ""
    seg_duration: StrictFloat | StrictInt = 0
    segments_sent: StrictInt = 0
    segments_received: StrictInt = 0
    upload_time: StrictFloat | StrictInt = 0
    download_time: StrictFloat | StrictInt = 0
    transcode_time: StrictFloat | StrictInt = 0


class TranscodingRow(BaseModel):
    """A transcoding row as the leaderboard stores it; a key the row left out is Go's zero value."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    region: StrictStr = ""
    orchestrator: StrictStr = ""
    timestamp: StrictInt = 0
    segments_sent: StrictInt = 0
    segments_received: StrictInt = 0
    success_rate: StrictFloat | StrictInt = 0
    round_trip_time: StrictFloat | StrictInt = 0
    seg_duration: StrictFloat | StrictInt = 0
    upload_time: StrictFloat | StrictInt = 0
    download_time: StrictFloat | StrictInt = 0
    transcode_time: StrictFloat | StrictInt = 0
    errors: list[_StrictError] | None = None
    model: StrictStr = ""  # a row with a model but no pipeline is still a transcoding row
    event_time: float = 0.0

    def payload(self) -> dict[str, Any]:
        """The stored JSONB: the struct re-encoded, its zero-valued fields gone (``omitempty``)."""
        return {key: value for key, value in self.model_dump(exclude={"event_time"}).items() if value}


_Row = TypeVar("_Row", StoredRow, TranscodingRow)
_Model = TypeVar("_Model", bound=BaseModel)


class SimLeaderboard:
    """Keeps AI rows in ``rows``, transcoding rows in ``transcoding_rows``; ``dropped`` holds rows whose
    region lacks the row's job type (stored nowhere, answered 200)."""

    def __init__(self, secret: str, regions: dict[str, tuple[str, ...]] | None = None, *, port: int = 0) -> None:
        self.secret = secret
        self.regions = dict(DEFAULT_REGIONS if regions is None else regions)
        self.rows: list[StoredRow] = []
        self.transcoding_rows: list[TranscodingRow] = []
        self.dropped: list[StoredRow | TranscodingRow] = []
        self.rejected: list[tuple[int, str]] = []
        self.script: list[int] = []  # statuses to answer the next posts with, before judging them
        self.refuse_models: set[str] = set()  # rows of these models hit a database constraint: 500 for ever
        self.serve_regions = True
        self.held = 0  # posts that arrived while held
        self._gate: threading.Event | None = None
        self._lock = threading.Lock()
        self._server = ServerThread(_Handler, self, port)

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def post_stats_url(self) -> str:
        return self.url + "/api/post_stats"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def hold_posts(self) -> None:
        """From now on posts wait unanswered, as behind a hung database, until released."""
        self._gate = threading.Event()

    def release_posts(self) -> None:
        """Let held posts go: each is dropped unanswered and stored nowhere."""
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.set()

    def wait_if_held(self) -> bool:
        """Called by the handler: block while posts are held; tell whether this one was."""
        gate = self._gate
        if gate is None:
            return False
        with self._lock:
            self.held += 1
        gate.wait()
        return True

    @property
    def port(self) -> int:
        return int(self._server.server.server_address[1])

    def accept(self, body: bytes, signature: str) -> tuple[int, str]:
        """Judge one POST as leaderboard-serverless does and return (status, text)."""
        with self._lock:
            scripted = self.script.pop(0) if self.script else None
        if scripted is not None:
            return self._reject(scripted, f"scripted answer {scripted}")
        expected = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return self._reject(403, "invalid signature")
        try:
            raw = json.loads(body)
            if not isinstance(raw, dict):
                raise ValueError(f"cannot unmarshal {type(raw).__name__} into Go value of type models.Stats")
            present = {key: value for key, value in raw.items() if value is not None}  # null leaves a zero value
            decoded = _GoStats.model_validate(present)
            kind = "ai" if decoded.model and decoded.pipeline else "transcoding"
            fields = {**present, "event_time": time.time()}
            row: StoredRow | TranscodingRow = (
                StoredRow.model_validate(fields) if kind == "ai" else TranscodingRow.model_validate(fields)
            )
        except ValidationError as exc:
            return self._reject(400, _go_type_error(exc))
        except ValueError as exc:
            return self._reject(400, f"json: {str(exc).splitlines()[0]}")
        types = self.regions.get(row.region)
        if types is None:
            return self._reject(400, "invalid region")
        if _has_nul(raw):
            return self._reject(500, NUL_REFUSED)  # PostgreSQL refuses it in JSONB, however often it comes
        if isinstance(row, StoredRow) and row.model in self.refuse_models:
            return self._reject(500, "ERROR: new row violates check constraint (SQLSTATE 23514)")
        if len(row.orchestrator) > MAX_ORCHESTRATOR:
            return self._reject(500, "ERROR: value too long for type character varying(56) (SQLSTATE 22001)")
        with self._lock:
            stored = _as_stored(row)
            if kind not in types:
                self.dropped.append(stored)  # the insert joins region and type: no row, no error
            elif isinstance(stored, StoredRow):
                self.rows.append(stored)
            else:
                self.transcoding_rows.append(stored)
        return 200, "ok"

    def _reject(self, status: int, text: str) -> tuple[int, str]:
        with self._lock:
            self.rejected.append((status, text))
        return status, text

    def aggregated_stats(
        self, pipeline: str, model: str, region: str | None, *, since: float | None = None, until: float | None = None
    ) -> dict[str, Any] | None:
        """Score stored rows as leaderboard-serverless does: exp(-k * avg_rtt), k = -ln(0.8) / median.

        The window is by insert time (default the last 24 h); None stands for its 500 on NaN.
        """
        until = time.time() if until is None else until
        since = until - DEFAULT_WINDOW_SECONDS if since is None else since
        with self._lock:
            rows = [r for r in self.rows if r.pipeline == pipeline and r.model == model]
        rows = [r for r in rows if (region is None or r.region == region) and since <= r.event_time <= until]
        passing = [float(r.round_trip_time) for r in rows if r.success_rate > 0]
        if rows and not passing and all(r.round_trip_time == 0 for r in rows):
            return None  # json: unsupported value: NaN
        median = statistics.median(passing) if passing else 0.0
        result: dict[str, Any] = {}
        for (orch, row_region), group in _group(rows).items():
            success = sum(float(r.success_rate) for r in group) / len(group)
            avg_rtt = sum(float(r.round_trip_time) for r in group) / len(group)
            rtt_score = math.exp(math.log(0.8) / median * avg_rtt) if median else 0.0
            score = 0.0 if success == 0 else 0.65 * success + 0.35 * rtt_score
            result.setdefault(orch, {})[row_region] = {
                "success_rate": success, "round_trip_score": rtt_score, "score": score,
            }  # fmt: skip
        return result

    def transcoding_stats(
        self,
        *,
        region: str | None = None,
        orchestrator: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> dict[str, dict[str, dict[str, float]]]:
        """Score transcoding rows per orchestrator and region as leaderboard-serverless does.

        round_trip_score = 1 - exp(-avg seg_duration / avg round_trip_time), 0 when the average
        round trip is 0; score = avg success_rate x round_trip_score. Missing values count as 0.
        """
        until = time.time() if until is None else until
        since = until - DEFAULT_WINDOW_SECONDS if since is None else since
        wanted = orchestrator.lower() if orchestrator is not None else None
        with self._lock:
            rows = list(self.transcoding_rows)
        rows = [
            r
            for r in rows
            if (region is None or r.region == region)
            and (wanted is None or r.orchestrator == wanted)
            and since <= r.event_time <= until
        ]
        result: dict[str, dict[str, dict[str, float]]] = {}
        for (orch, row_region), group in _group(rows).items():
            success = sum(float(r.success_rate) for r in group) / len(group)
            avg_seg = sum(float(r.seg_duration) for r in group) / len(group)
            avg_rtt = sum(float(r.round_trip_time) for r in group) / len(group)
            rtt_score = 1 - math.exp(-avg_seg / avg_rtt) if avg_rtt else 0.0
            score = success * rtt_score if success else 0.0
            result.setdefault(orch, {})[row_region] = {
                "success_rate": success, "round_trip_score": rtt_score, "score": score,
            }  # fmt: skip
        return result

    def raw_stats(self, orchestrator: str) -> dict[str, list[dict[str, Any]]]:
        """Stored payloads of one orchestrator by region, newest first (AI and transcoding alike)."""
        wanted = orchestrator.lower()
        with self._lock:
            stored: list[tuple[float, str, dict[str, Any]]] = [
                (r.event_time, r.region, r.model_dump(exclude={"event_time"})) for r in self.rows
            ]
            stored += [(r.event_time, r.region, r.payload()) for r in self.transcoding_rows]
        result: dict[str, list[dict[str, Any]]] = {}
        for _, region, payload in sorted(stored, key=lambda item: item[0], reverse=True):
            if payload.get("orchestrator") == wanted:
                result.setdefault(region, []).append(payload)
        return result

    def regions_document(self) -> dict[str, Any]:
        return {
            "regions": [
                {"id": region, "name": region.title(), "type": kind}
                for region, kinds in self.regions.items()
                for kind in kinds
            ]
        }


def _error_body(text: str) -> bytes:
    return json.dumps({"error": text}, separators=(",", ":")).encode()  # Go's encoder writes no spaces


_GO_TYPES = {"errors": "[]models.Error", "count": "int", "timestamp": "int64", "segments_sent": "int",
             "segments_received": "int", "model_is_warm": "bool"}  # fmt: skip


_UNION_TAGS = {"float", "int", "str", "bool", "none", "list[_StrictError]"}


def _go_type_error(exc: ValidationError) -> str:
    """The first problem, worded as Go's ``json.UnmarshalTypeError``."""
    problem = exc.errors()[0]
    # Keep field names only: list indexes and the tags pydantic gives union members go.
    names = [part for part in problem["loc"] if isinstance(part, str) and part not in _UNION_TAGS]
    where = ".".join(names)
    field = names[-1] if names else ""
    value = problem.get("input")
    if problem["type"] == "missing":
        return f"json: missing field {where}"
    if isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, int | float):
        kind = f"number {json.dumps(value)}"
    elif isinstance(value, str):
        kind = "string"
    elif isinstance(value, list):
        kind = "array"
    else:
        kind = "object"
    go_type = _GO_TYPES.get(field) or ("string" if "str" in problem["type"] else "float64")
    return f"json: cannot unmarshal {kind} into Go struct field Stats.{where} of type {go_type}"


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _as_stored(row: _Model) -> _Model:
    # JSONB keeps a lone surrogate escape as U+FFFD; Python's json.loads had kept it lone.
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return re.sub("[\ud800-\udfff]", "\ufffd", value)
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    return type(row).model_validate(clean(row.model_dump()))


def _group(rows: list[_Row]) -> dict[tuple[str, str], list[_Row]]:
    groups: dict[tuple[str, str], list[_Row]] = {}
    for row in rows:
        groups.setdefault((row.orchestrator, row.region), []).append(row)
    return groups


def _owner(handler: QuietHandler) -> SimLeaderboard:
    return handler.server.owner  # type: ignore[attr-defined, no-any-return]


class _Handler(QuietHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = self.read_body()
        if self.path != "/api/post_stats":
            self.reply(404, b"not found\n", "text/plain")
            return
        board = _owner(self)
        if board.wait_if_held():
            self.drop()
            return
        status, text = board.accept(body, self.headers.get("Authorization", ""))
        if status == 403:  # the auth middleware answers and returns
            self.reply(status, _error_body(text), "text/plain")
        elif status != 200:  # the handler writes its error, does not return, and appends "ok"
            self.reply(status, _error_body(text) + b"\nok", "text/plain")
        else:
            self.reply(status, b"ok", "text/plain")

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        if url.path == "/api/regions" and _owner(self).serve_regions:
            self.reply_json(200, _owner(self).regions_document())
        elif url.path == "/api/aggregated_stats" and _asks_ai(query):
            window = {key: float(query[key]) for key in ("since", "until") if key in query}
            stats = _owner(self).aggregated_stats(query["pipeline"], query["model"], query.get("region"), **window)
            if stats is None:
                self.reply(500, b'{"error":"json: unsupported value: NaN"}\nok', "text/plain")
            else:
                self.reply_json(200, stats)
        elif url.path == "/api/aggregated_stats":
            window = {key: float(query[key]) for key in ("since", "until") if key in query}
            stats = _owner(self).transcoding_stats(
                region=query.get("region"), orchestrator=query.get("orchestrator"),
                since=window.get("since"), until=window.get("until"),
            )  # fmt: skip
            self.reply_json(200, stats)
        elif url.path == "/api/raw_stats":
            if not query.get("orchestrator"):
                self.reply(400, b'{"error":"orchestrator is required"}', "text/plain")
            else:
                self.reply_json(200, _owner(self).raw_stats(query["orchestrator"]))
        else:
            self.reply(404, b"not found\n", "text/plain")


def _asks_ai(query: dict[str, str]) -> bool:
    return query.get("job_type") != "transcoding" and bool(query.get("pipeline")) and bool(query.get("model"))
