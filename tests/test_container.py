"""The container's entrypoint, without a Docker daemon: stub cron, real shell, real files."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import wait_until

ROOT = Path(__file__).parents[1]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
SHELL_SCRIPTS = [ENTRYPOINT, ROOT / "test-assets" / "make-assets.sh", ROOT / ".ci" / "run"]


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def entrypoint_run(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run the entrypoint with stub crontab and cron; return what they were given."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    record = tmp_path / "record"
    record.mkdir()
    _stub(stubs, "crontab", f'echo "$@" > {record}/crontab.args; cat > {record}/crontab.installed')
    _stub(stubs, "cron", f'echo "$@" > {record}/cron.args')

    def run(**env: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        full_env = {
            **os.environ,
            "PATH": f"{stubs}:{os.environ['PATH']}",
            "TESTER_USER": getpass.getuser(),
            "CRONTAB_TEMPLATE": str(ROOT / "crontab"),
            "TESTER_ENV_FILE": str(tmp_path / "tester.env"),
            "TESTER_LOG_PIPE": str(tmp_path / "run" / "log"),
            **env,
        }
        # Files, not pipes: the log forwarder the entrypoint leaves running keeps its stdout open.
        with (tmp_path / "stdout").open("w") as out, (tmp_path / "stderr").open("w") as err:
            proc = subprocess.Popen(
                ["bash", str(ENTRYPOINT)], env=full_env, stdout=out, stderr=err,
                start_new_session=True,  # so the forwarder can be stopped with its process group
            )  # fmt: skip
            returncode = proc.wait(timeout=30)
        stop_forwarder.append(proc.pid)
        done = subprocess.CompletedProcess(
            proc.args, returncode, (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()
        )
        return done, record

    stop_forwarder: list[int] = []
    yield run
    for group in stop_forwarder:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)


def test_default_schedule_config_and_cron_in_the_foreground(entrypoint_run) -> None:  # type: ignore[no-untyped-def]
    done, record = entrypoint_run()
    assert done.returncode == 0, done.stderr
    installed = (record / "crontab.installed").read_text()
    assert '0 */2 * * * . "$AI_JOB_TESTER_ENV" && ai-job-tester run >"$AI_JOB_TESTER_LOG" 2>&1' in installed
    assert "SHELL=/bin/bash" in installed
    assert (record / "crontab.args").read_text().split() == ["-u", getpass.getuser(), "-"]
    assert (record / "cron.args").read_text().split() == ["-f"]


def test_schedule_and_config_come_from_the_environment(entrypoint_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    done, record = entrypoint_run(CRONTAB_SCHEDULE="*/15 * * * 1-5", CONFIG_FILE="/etc/tester/lax.json")
    assert done.returncode == 0, done.stderr
    job = [line for line in (record / "crontab.installed").read_text().splitlines() if "ai-job-tester run" in line]
    assert job == ['*/15 * * * 1-5 . "$AI_JOB_TESTER_ENV" && ai-job-tester run >"$AI_JOB_TESTER_LOG" 2>&1']
    assert f"AI_JOB_TESTER_ENV={tmp_path / 'tester.env'}" in (record / "crontab.installed").read_text()


def test_the_environment_reaches_the_job_in_a_private_file(entrypoint_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    done, _ = entrypoint_run(METRICS_SECRET="s3cret with 'quotes' and $dollar", CONFIG_FILE="/cfg/a b.json")
    assert done.returncode == 0, done.stderr
    env_file = tmp_path / "tester.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600  # never world-readable
    # What the cron job's bash sees after sourcing the file:
    seen = subprocess.run(
        ["bash", "-c", f'. "{env_file}" && printf "%s\\n%s" "$METRICS_SECRET" "$AI_JOB_TESTER_CONFIG"'],
        env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert seen.stdout == "s3cret with 'quotes' and $dollar\n/cfg/a b.json"
    assert "s3cret" not in done.stdout + done.stderr


def test_the_jobs_output_reaches_the_container_log(entrypoint_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    done, _ = entrypoint_run()
    assert done.returncode == 0
    with (tmp_path / "run" / "log").open("w") as pipe:  # what the cron job's redirection does
        pipe.write("job output line\n")
    wait_until(lambda: "job output line" in (tmp_path / "stdout").read_text(), what="the forwarded line")


def test_a_bad_schedule_is_refused_with_one_line(entrypoint_run) -> None:  # type: ignore[no-untyped-def]
    done, record = entrypoint_run(CRONTAB_SCHEDULE="every two hours")
    assert done.returncode == 2
    assert (
        done.stderr
        == "entrypoint: CRONTAB_SCHEDULE must have five fields (minute hour day month weekday), got: every two hours\n"
    )
    assert not (record / "cron.args").exists()


def test_arguments_run_instead_of_cron(entrypoint_run) -> None:  # type: ignore[no-untyped-def]
    done = subprocess.run(["bash", str(ENTRYPOINT), "echo", "hello"], capture_output=True, text=True, check=True)
    assert done.stdout == "hello\n"


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_pass_shellcheck(script: Path) -> None:
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    done = subprocess.run([shellcheck, str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


def test_compose_starts_the_gateway_in_tester_mode() -> None:
    compose = (ROOT / "docker" / "docker-compose.yml").read_text()
    for flag in ("-orchWebhookUrl=http://ai-job-tester:7934/orchestrators", "-webhookRefreshInterval=0",
                 "-aiTesterGateway=true", "-aiSessionTimeout=0", "-discoveryTimeout=750ms"):  # fmt: skip
        assert flag in compose
    assert "/var/lib/ai-job-tester" in compose and "/app/configs/config.json" in compose
