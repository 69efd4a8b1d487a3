"""The benchmark script still runs end to end (its figures are read by people, never asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent / "bench" / "bench.py"


def test_the_benchmark_runs_and_prints_every_figure() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for figure in ("round-trip bias", "webhook answer time", "overhead per job", "peak RSS",
                   "discovery over HTTP and planning", "--help` wall time", "machine:"):  # fmt: skip
        assert figure in done.stdout
