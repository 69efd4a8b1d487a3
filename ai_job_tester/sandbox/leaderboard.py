"""A simulated leaderboard API: checks the HMAC and the JSON types as the real one does."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import statistics
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from ._http import QuietHandler, ServerThread

DEFAULT_REGIONS: dict[str, tuple[str, ...]] = {
    "GLOBAL": ("ai", "transcoding"),
    "MDW": ("ai", "transcoding"),
    "FRA": ("ai", "transcoding"),
    "LAX": ("ai", "transcoding"),
    "SIN": ("transcoding",),
    "NYC": ("transcoding",),
}


class _StrictError(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error_code: StrictStr
    message: StrictStr
    count: StrictInt


class StoredRow(BaseModel):
    """A row as the leaderboard's Go decoder accepts it (numbers may be ints or floats)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    region: StrictStr
    orchestrator: StrictStr
    success_rate: StrictFloat | StrictInt
    round_trip_time: StrictFloat | StrictInt
    errors: list[_StrictError]
    timestamp: StrictInt
    model: StrictStr
    pipeline: StrictStr
    model_is_warm: StrictBool
    input_parameters: StrictStr
    response_payload: StrictStr


class SimLeaderboard:
    """Keeps the rows it accepts in ``rows``; ``dropped`` holds rows of transcoding-only regions."""

    def __init__(self, secret: str, regions: dict[str, tuple[str, ...]] | None = None, *, port: int = 0) -> None:
        self.secret = secret
        self.regions = dict(DEFAULT_REGIONS if regions is None else regions)
        self.rows: list[StoredRow] = []
        self.dropped: list[StoredRow] = []
        self.rejected: list[tuple[int, str]] = []
        self.script: list[int] = []  # statuses to answer the next posts with, before judging them
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
            row = StoredRow.model_validate(json.loads(body))
        except (ValueError, ValidationError) as exc:
            return self._reject(400, f"invalid body: {str(exc).splitlines()[0]}")
        if not row.model or not row.pipeline:
            return self._reject(400, "model and pipeline are required for AI stats")
        types = self.regions.get(row.region)
        if types is None:
            return self._reject(400, "invalid region")
        with self._lock:
            (self.rows if "ai" in types else self.dropped).append(row)
        return 200, "ok"

    def _reject(self, status: int, text: str) -> tuple[int, str]:
        with self._lock:
            self.rejected.append((status, text))
        return status, text

    def aggregated_stats(self, pipeline: str, model: str, region: str | None) -> dict[str, Any]:
        """Score stored rows as leaderboard-serverless does: exp(-k * avg_rtt), k = -ln(0.8) / median."""
        with self._lock:
            rows = [r for r in self.rows if r.pipeline == pipeline and r.model == model]
        rows = [r for r in rows if region is None or r.region == region]
        passing = [float(r.round_trip_time) for r in rows if r.success_rate > 0]
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

    def regions_document(self) -> dict[str, Any]:
        return {
            "regions": [
                {"id": region, "name": region.title(), "type": kind}
                for region, kinds in self.regions.items()
                for kind in kinds
            ]
        }


def _group(rows: list[StoredRow]) -> dict[tuple[str, str], list[StoredRow]]:
    groups: dict[tuple[str, str], list[StoredRow]] = {}
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
        self.reply(status, text.encode(), "text/plain")

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        if url.path == "/api/regions" and _owner(self).serve_regions:
            self.reply_json(200, _owner(self).regions_document())
        elif url.path == "/api/aggregated_stats" and "pipeline" in query and "model" in query:
            self.reply_json(200, _owner(self).aggregated_stats(query["pipeline"], query["model"], query.get("region")))
        else:
            self.reply(404, b"not found\n", "text/plain")
