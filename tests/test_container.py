"""The container's scripts, without a container engine: stub cron, real shell, real files.

docker/smoke-test.sh runs the real image (podman or docker); `.ci/run` calls it.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import wait_until

ROOT = Path(__file__).parents[1]
DOCKER = ROOT / "docker"
ENTRYPOINT = DOCKER / "entrypoint.sh"
TICK = DOCKER / "tick.sh"
SENDMAIL = DOCKER / "sendmail.sh"
SHELL_SCRIPTS = [
    ENTRYPOINT,
    TICK,
    SENDMAIL,
    DOCKER / "smoke-test.sh",
    ROOT / "test-assets" / "make-assets.sh",
    ROOT / ".ci" / "run",
]
JOB_LINE = '0 */2 * * * ai-job-tester-tick >"$AI_JOB_TESTER_LOG" 2>&1'
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(0o755)


def _bin(venv_tool: str) -> str:
    return shutil.which(venv_tool) or str(Path(sys.executable).parent / venv_tool)


@dataclass
class Started:
    """An entrypoint running with stub cron: its process, its output files and what it set up."""

    proc: subprocess.Popen[str]
    tmp: Path
    record: Path
    env: dict[str, str]

    @property
    def stdout(self) -> str:
        return (self.tmp / "stdout").read_text()

    @property
    def stderr(self) -> str:
        return (self.tmp / "stderr").read_text()

    @property
    def run_dir(self) -> Path:
        return self.tmp / "run"

    def cron_started(self) -> bool:
        return (self.record / "cron.args").exists()

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15) -> tuple[int, float]:
        began = time.monotonic()
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - began

    def tick(self) -> subprocess.Popen[str]:
        """Run one tick as the installed crontab line does (its output to the log pipe)."""
        installed = (self.record / "crontab.installed").read_text()
        variables = dict(re.findall(r"^([A-Z_]+)=(.*)$", installed, re.MULTILINE))
        env = {"PATH": self.env["PATH"], "HOME": str(self.tmp), **variables}
        return subprocess.Popen(
            ["bash", "-c", f'exec "{TICK}" >"$AI_JOB_TESTER_LOG" 2>&1'], env=env, text=True, start_new_session=True
        )


@pytest.fixture
def entrypoint(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    """Start the entrypoint with stub crontab and cron (which waits, as cron -f does)."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    record = tmp_path / "record"
    record.mkdir()
    _stub(stubs, "crontab", f'echo "$@" > {record}/crontab.args; cat > {record}/crontab.installed')
    _stub(stubs, "cron", f'echo "$@" > {record}/.cron.args; mv {record}/.cron.args {record}/cron.args; exec sleep 300')
    started: list[Started] = []
    short = Path(tempfile.mkdtemp(prefix="syslog-", dir="/tmp"))

    def start(*args: str, wait: bool = True, **env: str) -> Started:
        full_env = {
            **os.environ,
            "PATH": f"{stubs}:{os.environ['PATH']}",
            "TESTER_USER": getpass.getuser(),
            "CRONTAB_TEMPLATE": str(ROOT / "crontab"),
            "TESTER_ENV_FILE": str(tmp_path / "tester.env"),
            "TESTER_RUN_DIR": str(tmp_path / "run"),
            "TESTER_STATE_DIR": str(tmp_path / "state"),
            "TESTER_SYSLOG_SOCKET": str(short / "log"),  # a socket's path has at most 107 bytes
            "TESTER_SYSLOG_FORWARDER": str(DOCKER / "syslog.py"),
            **env,
        }
        for recorded in record.iterdir():
            recorded.unlink()
        # Files, not pipes: the log forwarder keeps its stdout open as long as it runs.
        with (tmp_path / "stdout").open("w") as out, (tmp_path / "stderr").open("w") as err:
            proc = subprocess.Popen(
                ["bash", str(ENTRYPOINT), *args], env=full_env, stdout=out, stderr=err, text=True,
                start_new_session=True,  # so that what it leaves behind can be stopped with its group
            )  # fmt: skip
        run = Started(proc, tmp_path, record, full_env)
        started.append(run)
        if wait and not args:
            wait_until(lambda: run.cron_started() or proc.poll() is not None, what="cron to start")
        return run

    yield start
    for run in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.proc.wait(timeout=5)
    shutil.rmtree(short, ignore_errors=True)


def test_default_schedule_config_and_cron_in_the_foreground(entrypoint) -> None:  # type: ignore[no-untyped-def]
    run = entrypoint()
    assert run.proc.poll() is None, run.stderr
    installed = (run.record / "crontab.installed").read_text()
    assert JOB_LINE in installed.splitlines()
    assert "SHELL=/bin/bash" in installed and "PATH=/usr/local/bin:/usr/bin:/bin" in installed
    assert f"AI_JOB_TESTER_PIDFILE={run.run_dir / 'cycle.pid'}" in installed
    assert (run.record / "crontab.args").read_text().split() == ["-u", getpass.getuser(), "-"]
    assert (run.record / "cron.args").read_text().split() == ["-f", "-L", "5"]
    assert "cycles scheduled '0 */2 * * *'" in run.stderr


def test_schedule_and_config_come_from_the_environment(entrypoint, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = entrypoint(CRONTAB_SCHEDULE="*/15 * * * 1-5", CONFIG_FILE="/etc/tester/lax.json")
    installed = (run.record / "crontab.installed").read_text()
    assert [line for line in installed.splitlines() if "ai-job-tester-tick" in line] == [
        '*/15 * * * 1-5 ai-job-tester-tick >"$AI_JOB_TESTER_LOG" 2>&1'
    ]
    assert f"AI_JOB_TESTER_ENV={tmp_path / 'tester.env'}" in installed
    assert "export AI_JOB_TESTER_CONFIG=/etc/tester/lax.json" in (tmp_path / "tester.env").read_text()


def test_the_environment_reaches_the_job_in_a_private_file(entrypoint, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = entrypoint(METRICS_SECRET="s3cret with 'quotes'\nand $dollar", CONFIG_FILE="/cfg/a b.json")
    env_file = tmp_path / "tester.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600  # never world-readable
    # What the tick's bash sees after sourcing the file:
    seen = subprocess.run(
        ["bash", "-c", f'. "{env_file}" && printf "%s|%s" "$METRICS_SECRET" "$AI_JOB_TESTER_CONFIG"'],
        env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert seen.stdout == "s3cret with 'quotes'\nand $dollar|/cfg/a b.json"
    assert "s3cret" not in run.stdout + run.stderr


def test_what_the_tester_user_needs_is_its_own_and_nothing_else_is_private(entrypoint) -> None:  # type: ignore[no-untyped-def]
    """The umask for the env file must not leak: the run directory stays 0755 for the tester."""
    run = entrypoint()
    me = os.geteuid()
    assert stat.S_IMODE(run.run_dir.stat().st_mode) == 0o755
    log = run.run_dir / "log"
    assert stat.S_ISFIFO(log.stat().st_mode) and stat.S_IMODE(log.stat().st_mode) == 0o600
    assert log.stat().st_uid == me
    pid_file = run.run_dir / "cycle.pid"
    assert stat.S_IMODE(pid_file.stat().st_mode) == 0o644 and pid_file.stat().st_uid == me


def test_the_ticks_output_reaches_the_container_log(entrypoint) -> None:  # type: ignore[no-untyped-def]
    run = entrypoint()
    with (run.run_dir / "log").open("w") as pipe:  # what the crontab line's redirection does
        pipe.write("job output line\n")
    wait_until(lambda: "job output line" in run.stdout, what="the forwarded line")


def test_crons_own_messages_reach_the_container_log(entrypoint) -> None:  # type: ignore[no-untyped-def]
    run = entrypoint()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as syslog:
        syslog.sendto(
            b"<83>Nov 23 19:13:01 CRON[45]: (tester) PAM ERROR (Permission denied)", run.env["TESTER_SYSLOG_SOCKET"]
        )
    wait_until(lambda: "syslog: CRON[45]: (tester) PAM ERROR (Permission denied)\n" in run.stdout, what="the line")
    assert run.stop()[0] == 143


def test_an_idle_container_stops_at_once_with_143(entrypoint) -> None:  # type: ignore[no-untyped-def]
    run = entrypoint()
    code, took = run.stop()
    assert code == 143 and took < 2, run.stderr
    assert run.stderr.endswith("entrypoint: stopped\n")
    assert entrypoint().stop(signal.SIGINT)[0] == 130


def test_a_stop_during_set_up_is_not_lost(entrypoint, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # As PID 1 a shell ignores a signal it has no trap for: the traps must be there before set-up waits.
    silent = tmp_path / "silent-syslog.py"
    silent.write_text("import time\ntime.sleep(60)\n")  # never makes its socket: set-up waits 5 s for it
    run = entrypoint(wait=False, TESTER_SYSLOG_FORWARDER=str(silent))
    wait_until(lambda: "cron runs in the foreground" in run.stderr, what="set-up to start waiting")
    code, took = run.stop()
    assert code == 143 and took < 2, run.stderr
    assert not run.cron_started()


def _cycle_stub(run: Started, body: str) -> None:
    _stub(Path(run.env["PATH"].split(":")[0]), "ai-job-tester", body)


def test_stop_during_a_cycle_hands_it_sigterm_and_keeps_its_last_lines(entrypoint) -> None:  # type: ignore[no-untyped-def]
    run = entrypoint()
    _cycle_stub(
        run,
        'trap \'echo "partial summary"; exit 143\' TERM\necho "cycle running as $(id -un)"\n'
        "while :; do sleep 0.05; done",
    )
    tick = run.tick()
    wait_until(lambda: "cycle running" in run.stdout, what="the cycle to start")
    assert "tick: cycle starting" in run.stdout
    code, took = run.stop()
    assert code == 143 and took < 5, run.stderr
    assert tick.wait(timeout=5) == 143
    assert "partial summary" in run.stdout  # forwarded before the entrypoint exited
    assert "SIGTERM: stopping the cycle under way" in run.stderr


def test_a_cycle_that_does_not_stop_in_the_grace_period_is_killed(entrypoint) -> None:  # type: ignore[no-untyped-def]
    run = entrypoint(TESTER_STOP_GRACE="1")
    _cycle_stub(run, "trap '' TERM\necho stubborn\nwhile :; do sleep 0.05; done")
    tick = run.tick()
    wait_until(lambda: "stubborn" in run.stdout, what="the cycle to start")
    code, took = run.stop()
    assert code == 143 and took < 4
    assert tick.wait(timeout=5) == -signal.SIGKILL
    assert "did not stop within 1 s; killing it" in run.stderr


def test_a_tick_while_a_cycle_runs_does_nothing(entrypoint) -> None:  # type: ignore[no-untyped-def]
    run = entrypoint()
    _cycle_stub(run, "echo running\nwhile :; do sleep 0.05; done")
    first = run.tick()
    wait_until(lambda: "running" in run.stdout, what="the first cycle")
    second = run.tick()
    assert second.wait(timeout=10) == 0
    wait_until(lambda: f"the previous cycle (pid {first.pid}) is still running" in run.stdout, what="the skip line")
    assert run.stop()[0] == 143


def test_a_tick_that_fails_early_says_so_in_the_log(entrypoint, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = entrypoint()
    (tmp_path / "tester.env").unlink()
    assert run.tick().wait(timeout=10) == 1
    wait_until(lambda: "cannot read the environment file" in run.stdout, what="the failure line")


def test_what_cron_would_mail_goes_to_the_log() -> None:
    mail = (
        'From: root (Cron Daemon)\nTo: tester\nSubject: Cron <tester@box> ai-job-tester-tick >"$AI_JOB_TESTER_LOG"\n'
        "MIME-Version: 1.0\n\n/bin/bash: line 1: /run/ai-job-tester/log: Permission denied\n"
    )
    done = subprocess.run(
        ["bash", str(SENDMAIL), "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "tester"],
        input=mail, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout == ""
    assert done.stderr == (
        'cron: Cron <tester@box> ai-job-tester-tick >"$AI_JOB_TESTER_LOG"\n'
        "cron: /bin/bash: line 1: /run/ai-job-tester/log: Permission denied\n"
    )


def test_a_bad_schedule_is_refused_with_one_line(entrypoint) -> None:  # type: ignore[no-untyped-def]
    run = entrypoint(CRONTAB_SCHEDULE="every two hours")
    assert run.proc.wait(timeout=10) == 2
    assert run.stderr == (
        "entrypoint: CRONTAB_SCHEDULE must have five fields (minute hour day month weekday), got: every two hours\n"
    )
    assert not run.cron_started()


def test_arguments_run_instead_of_cron_with_the_config_file(entrypoint) -> None:  # type: ignore[no-untyped-def]
    run = entrypoint("bash", "-c", 'echo "hello $AI_JOB_TESTER_CONFIG"', CONFIG_FILE="/etc/x.json")
    assert run.proc.wait(timeout=10) == 0
    assert run.stdout == "hello /etc/x.json\n"


@as_root
def test_one_off_commands_run_as_the_tester_user_and_reclaim_the_state(entrypoint, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    nobody = pwd.getpwnam("nobody")
    state = tmp_path / "state"
    state.mkdir()
    (state / "lock").write_text("1\n")  # left by a root one-off of an older image
    tmp_path.chmod(0o755)
    run = entrypoint("id", "-u", TESTER_USER="nobody")
    assert run.proc.wait(timeout=10) == 0, run.stderr
    assert run.stdout == f"{nobody.pw_uid}\n"
    assert (state / "lock").stat().st_uid == nobody.pw_uid


@pytest.mark.parametrize(("skip", "code"), [("", 1), ("1", 0)])
def test_the_smoke_test_never_passes_silently_without_an_engine(skip: str, code: int) -> None:
    env = {**os.environ, "CONTAINER_ENGINE": "no-such-engine", "AI_JOB_TESTER_SKIP_CONTAINER": skip}
    done = subprocess.run(["bash", str(DOCKER / "smoke-test.sh")], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == code
    assert len(done.stdout.splitlines()) == 1 and "no-such-engine is not installed" in done.stdout
    assert done.stdout.startswith("smoke-test: skipped:" if skip else "smoke-test: no container engine can run here:")


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_pass_shellcheck(script: Path) -> None:
    done = subprocess.run([_bin("shellcheck"), str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


def test_the_dockerfile_passes_hadolint() -> None:
    done = subprocess.run(
        [_bin("hadolint"), "--failure-threshold", "style", str(DOCKER / "Dockerfile")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def _locked(lock: Path) -> dict[str, str]:
    pins = dict(re.findall(r"^([a-z0-9._-]+)==(\S+) \\$", lock.read_text(), re.MULTILINE))
    requirements = [line for line in lock.read_text().splitlines() if line and not line.startswith((" ", "#"))]
    assert len(pins) == len(requirements), "every requirement is pinned with =="
    return pins


def test_the_image_installs_pinned_and_hashed_dependencies() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "--require-hashes -r /tmp/requirements.lock" in dockerfile
    assert "--require-hashes -r docker/build.lock" in dockerfile
    runtime = _locked(DOCKER / "requirements.lock")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in project:
        name = re.split(r"[<>=!~\[ ;]", requirement)[0].lower()
        assert name in runtime, f"{name} is in pyproject.toml but not in docker/requirements.lock"
    assert "imageio-ffmpeg" in runtime  # ffmpeg for live video
    assert "hatchling" in _locked(DOCKER / "build.lock")


def test_the_build_context_is_only_what_the_image_needs() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*")] == "*"  # everything is left out but what is listed
    copied = re.findall(r"^COPY (?!--from)(\S+)", (DOCKER / "Dockerfile").read_text(), re.MULTILINE)
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    for source in copied:
        assert source.split("/")[0] in allowed, f"{source} is copied but excluded by .dockerignore"


def test_compose_starts_the_gateway_in_tester_mode() -> None:
    compose = (ROOT / "docker" / "docker-compose.yml").read_text()
    for flag in ("-orchWebhookUrl=http://ai-job-tester:7934/orchestrators", "-webhookRefreshInterval=0",
                 "-aiTesterGateway=true", "-aiSessionTimeout=0", "-discoveryTimeout=750ms"):  # fmt: skip
        assert flag in compose
    assert "/var/lib/ai-job-tester" in compose and "/app/configs/config.json" in compose


def test_the_simulated_network_serves_in_the_foreground_until_sigterm(tmp_path: Path) -> None:
    """What the smoke test runs on the host: a config for the tester, what the leaderboard stored."""
    config, state = tmp_path / "config.json", tmp_path / "leaderboard.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ai_job_tester.sandbox", "serve", "--config-out", str(config), "--webhook-port", "7934",
         "--latency", "0.5", "--transcoding", "--no-secret", "--state-file", str(state)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: config.exists() and state.exists(), what="the config and the state file")
        written = json.loads(config.read_text())
        assert written["internalWebServerAddress"] == "127.0.0.1" and written["internalWebServerPort"] == "7934"
        assert "metricsSecret" not in written and "liveVideo" not in written
        assert written["transcoding"] == {}  # the image tests transcoding too
        assert stat.S_IMODE(config.stat().st_mode) == 0o644  # a tester under another uid reads it
        assert json.loads(state.read_text())["rows"] == []
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out
    assert out.splitlines()[-1] == "sandbox: network stopped"
