"""Run the simulated network in the foreground, for a tester started elsewhere (e.g. in a container).

    python -m ai_job_tester.sandbox serve --config-out /tmp/sim/config.json --webhook-port 7934 \\
        [--latency 1.0] [--live] [--transcoding] [--no-secret] [--state-file /tmp/sim/state.json]

It writes the tester's config for the network (``SimNetwork.tester_config``), then runs until
SIGTERM or SIGINT. With ``--state-file`` it keeps a JSON file up to date with what the simulated
leaderboard stored (``rows``, ``transcoding_rows``) and refused (``rejected``). Both files are written whole (a rename),
so a reader never sees half of one.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from .network import SimNetwork

STATE_INTERVAL = 0.2  # seconds between two looks at the leaderboard


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ai_job_tester.sandbox", description="The simulated network, in the foreground."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start a network and run until SIGTERM or SIGINT")
    serve.add_argument("--config-out", type=Path, required=True, help="write the tester's config here")
    serve.add_argument("--webhook-port", type=int, required=True, help="the port the tester's webhook binds")
    serve.add_argument("--webhook-address", default="127.0.0.1", help="where the tester's webhook binds")
    serve.add_argument("--latency", type=float, default=None, help="seconds every orchestrator takes per job")
    serve.add_argument("--live", action="store_true", help="add a liveVideo block (the tester needs ffmpeg)")
    serve.add_argument("--transcoding", action="store_true", help="add a transcoding block: AI and transcoding tests")
    serve.add_argument("--no-secret", action="store_true", help="leave metricsSecret out (give METRICS_SECRET)")
    serve.add_argument("--state-file", type=Path, default=None, help="keep what the leaderboard stored here")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    network = SimNetwork()
    if args.latency is not None:
        for orchestrator in network.orchestrators:
            orchestrator.latency = args.latency
    with network:
        extra: dict[str, Any] = {"internalWebServerAddress": args.webhook_address}
        if args.live:
            extra["liveVideo"] = network.live_video()
        if args.transcoding:
            extra["transcoding"] = {}
        config = network.tester_config(webhook_port=args.webhook_port, **extra)
        if args.no_secret:
            del config["metricsSecret"]
        _write_json(args.config_out, config)
        print(f"sandbox: network up, leaderboard {network.leaderboard.url}, config {args.config_out}", flush=True)
        written: tuple[int, int, int] | None = None
        while True:
            stopping = stop.wait(STATE_INTERVAL)
            board = network.leaderboard
            seen = (len(board.rows), len(board.transcoding_rows), len(board.rejected))
            if args.state_file is not None and seen != written:
                _write_json(args.state_file, _state(network))
                written = seen
            if stopping:
                break
    print("sandbox: network stopped", flush=True)
    return 0


def _state(network: SimNetwork) -> dict[str, Any]:
    board = network.leaderboard
    return {
        "leaderboard": board.url,
        "rows": [row.model_dump() for row in list(board.rows)],
        "transcoding_rows": [row.model_dump() for row in list(board.transcoding_rows)],
        "rejected": [{"status": status, "text": text} for status, text in list(board.rejected)],
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    # Readable by all: a tester in a container, under another uid, reads the config through a bind mount.
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    temporary.chmod(0o644)
    temporary.replace(path)


if __name__ == "__main__":
    raise SystemExit(main())
