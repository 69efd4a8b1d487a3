"""The simulated live path: a media server for the tester's push and the AI output, and the status.

The tester pushes FLV with ffmpeg to ``<media server>/<streamId>?<query>``; like a
media server's ready hook, this one hands the query to the gateway, which pins the
stream to the orchestrator the query names (or refuses it). The output,
``<streamId>-out``, is MPEG-TS that ffmpeg generates at the orchestrator's frame rate,
after its start delay, for as long as the push lasts. The simulation speaks HTTP where a
real media server speaks RTMP: to the tester's ffmpeg only the URL's scheme differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ._http import QuietHandler, ServerThread
from .scenario import SimOrchestrator


@dataclass
class LiveSession:
    """One pushed stream, as the gateway tracks it."""

    stream_id: str
    query: dict[str, str]
    started: float
    orchestrator: SimOrchestrator | None
    error: str | None = None
    pushing: bool = True
    params_hash: str = ""
    ended: threading.Event = field(default_factory=threading.Event)


class LiveRouter:
    """The gateway's live side: pins each stream to the orchestrator its query names."""

    def __init__(self, orchestrators: list[SimOrchestrator]) -> None:
        self.orchestrators = orchestrators
        self.sessions: dict[str, LiveSession] = {}
        self._lock = threading.Lock()

    def start(self, stream_id: str, query: dict[str, str]) -> LiveSession:
        pin = query.get("orchestrator", "")
        selector = query.get("pipeline", "")
        orch = next(
            (
                o
                for o in self.orchestrators
                if pin and pin in o.service_uri and o.offers("Live video to video", selector)
            ),
            None,
        )
        session = LiveSession(stream_id, query, time.monotonic(), orch)
        try:
            params = json.loads(query.get("params") or "{}")
        except ValueError:
            params = None
        if orch is None or orch.live is None:
            session.error = "no orchestrators available"
        elif params is None:
            session.error = "invalid params"
        else:
            # The runner's own form: json.dumps with sort_keys and the default separators.
            session.params_hash = hashlib.md5(json.dumps(params, sort_keys=True).encode()).hexdigest()
            if orch.live.capped_times > 0:
                orch.live.capped_times -= 1
                session.error = "OrchestratorCapped"
        with self._lock:
            self.sessions[stream_id] = session
        return session

    def status(self, stream_id: str) -> dict[str, Any] | None:
        session = self.sessions.get(stream_id)
        if session is None:
            return None
        live = session.orchestrator.live if session.orchestrator is not None else None
        error = session.error
        error_after = live.error_after if live is not None else None
        if error is None and error_after is not None and time.monotonic() - session.started >= error_after:
            error = "inference failed: CUDA out of memory"
        state = "ERROR" if error else ("ONLINE" if session.pushing else "OFFLINE")
        return {
            "state": state,
            "input_status": {"fps": 30.0},
            "inference_status": {
                "fps": live.fps if live is not None else 0.0,
                "last_params_hash": session.params_hash,
                "last_error": error if error and error.startswith("inference") else "",
            },
            "orchestrator_info": {
                "address": session.orchestrator.address if session.orchestrator else "",
                "url": session.orchestrator.service_uri if session.orchestrator else "",
            },
            "gateway_status": {
                "error": {"error_message": error} if error and not error.startswith("inference") else {}
            },
        }


class SimMediaServer:
    """Takes pushed streams and serves their AI output, over HTTP on loopback."""

    def __init__(self, router: LiveRouter) -> None:
        self.router = router
        self.outputs: list[subprocess.Popen[bytes]] = []
        self._server = ServerThread(_Handler, self)

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()
        for process in self.outputs:
            if process.poll() is None:
                process.kill()
                process.wait()


def _owner(handler: QuietHandler) -> SimMediaServer:
    return handler.server.owner  # type: ignore[attr-defined, no-any-return]


class _Handler(QuietHandler):
    def do_POST(self) -> None:  # noqa: N802 - the push: hand the query over, then swallow the stream
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        session = _owner(self).router.start(url.path.strip("/"), query)
        try:
            while self.read_body_chunk():
                pass
        finally:
            session.pushing = False
            session.ended.set()
        self.reply(200, b"", "text/plain")

    def read_body_chunk(self) -> bool:
        line = self.rfile.readline()
        size = int(line.split(b";")[0].strip() or b"0", 16) if line.strip() else 0
        if size == 0:
            return False
        self.rfile.read(size)
        self.rfile.readline()
        return True

    def do_GET(self) -> None:  # noqa: N802 - the AI output
        stream = urlsplit(self.path).path.strip("/").removesuffix("-out")
        session = _owner(self).router.sessions.get(stream)
        live = session.orchestrator.live if session and session.orchestrator else None
        if session is None or session.error or live is None or not live.output:
            self.reply(404, b"no such stream\n", "text/plain")
            return
        wait = session.started + live.start_delay - time.monotonic()
        if wait > 0:
            self.reply(404, b"not yet\n", "text/plain")  # a media server has no such path yet
            return
        self._stream(session, live.fps)

    def _stream(self, session: LiveSession, fps: float) -> None:
        command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi",
                   "-i", f"testsrc=size=320x180:rate={fps:g}", "-c:v", "libx264", "-preset", "ultrafast",
                   "-tune", "zerolatency", "-g", str(max(1, round(fps))), "-f", "mpegts", "-"]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        _owner(self).outputs.append(process)
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nTransfer-Encoding: chunked\r\n\r\n")
        assert process.stdout is not None
        try:
            while not session.ended.is_set() and (data := os.read(process.stdout.fileno(), 65536)):
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the reader went away
        finally:
            process.kill()
            process.wait()
        self.close_connection = True
