#!/usr/bin/env bash
# Container smoke test: build the image, run it from cron against the simulated network on the
# host, and check what an operator relies on:
#   - one-off commands run as the tester user and read CONFIG_FILE;
#   - a one-minute schedule runs a full cycle as that user: summary in the container log, rows
#     (a live video one included: ffmpeg works in the image) at the leaderboard, state files
#     owned by the tester user (a root-owned file left in the volume is given back first);
#   - `stop` during a cycle: partial summary, rows kept, exit 143 well inside the 10 s grace;
#   - `stop` of an idle container: at once, 143.
# Usage: docker/smoke-test.sh            (from anywhere; about 2-3 minutes on a warm machine)
#   CONTAINER_ENGINE=podman|docker  which engine (default: podman if present, else docker)
#   PYTHON=python3                  a Python with this project installed (runs the simulated network)
#   AI_JOB_TESTER_SKIP_CONTAINER=1  exit 0 with one line where no engine can run (CI must not set it)
#   BASE=IMAGE                      build on another base image, e.g. localhost/python-standin:slim-trixie
# With podman and no python:3.11-slim in its storage, ../shared/tools/container/make-base.sh
# (beside the repository) makes a local stand-in; CONTAINERS_CONF defaults to the file there.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
tools="$root/../shared/tools/container"
python="${PYTHON:-python3}"
image="ai-job-tester-smoke:latest"
name="ai-job-tester-smoke-$$"
tester_uid=10001
secret="sandbox-secret"   # the simulated leaderboard's; given by environment, never in a file
started=$(date +%s)

say() { echo "smoke-test: $*"; }
die() {
  say "FAILED: $*"
  exit 1
}

# --- A container engine, or one clear line. ---------------------------------------------------
no_engine() {
  if [ "${AI_JOB_TESTER_SKIP_CONTAINER:-}" = 1 ]; then
    say "skipped: $1 (AI_JOB_TESTER_SKIP_CONTAINER=1)"
    exit 0
  fi
  say "no container engine can run here: $1; install podman (see ../shared/tools/container/README.md) or set AI_JOB_TESTER_SKIP_CONTAINER=1 to skip"
  exit 1
}
engine="${CONTAINER_ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v podman >/dev/null 2>&1; then engine=podman
  elif command -v docker >/dev/null 2>&1; then engine=docker
  else no_engine "neither podman nor docker is installed"
  fi
fi
command -v "$engine" >/dev/null 2>&1 || no_engine "$engine is not installed"
if [ "$engine" = podman ] && [ -z "${CONTAINERS_CONF:-}" ] && [ -f "$tools/containers.conf" ]; then
  export CONTAINERS_CONF="$tools/containers.conf"
fi
engine_error="$("$engine" info 2>&1 >/dev/null)" || no_engine "'$engine info' fails: ${engine_error##*$'\n'}"

build_args=(--network=host -f docker/Dockerfile -t "$image")
[ -z "${BASE:-}" ] || build_args+=(--build-arg "BASE=$BASE")
if [ "$engine" = podman ]; then
  build_args+=(--pull=never --format docker)   # docker format: the Dockerfile's SHELL is kept
  if [ -z "${BASE:-}" ] && ! podman image exists docker.io/library/python:3.11-slim; then
    [ -x "$tools/make-base.sh" ] || die "no python:3.11-slim image and no $tools/make-base.sh to make one"
    say "making a local python:3.11-slim with $tools/make-base.sh"
    "$tools/make-base.sh" >/dev/null
  fi
fi

# --- Scratch space, the simulated network, and cleaning up after both. -------------------------
work="$(mktemp -d /tmp/ai-job-tester-smoke.XXXXXX)"
sim_pid=""
containers=()
cleanup() {
  local status=$?
  for c in "${containers[@]}"; do
    if [ "$status" != 0 ]; then
      echo "----- log of $c -----"
      "$engine" logs "$c" 2>&1 | tail -n 60 || true
    fi
    "$engine" rm -f "$c" >/dev/null 2>&1 || true
  done
  if [ -n "$sim_pid" ]; then
    kill "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
  fi
  if [ "$status" != 0 ]; then
    echo "----- simulated network -----"
    tail -n 20 "$work/sim.log" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# wait_for SECONDS WHAT COMMAND...: run COMMAND until it succeeds, or fail after SECONDS.
wait_for() {
  local seconds="$1" what="$2" deadline
  shift 2
  deadline=$(($(date +%s) + seconds))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || die "no $what within ${seconds} s"
    sleep 0.5
  done
}
logs() { "$engine" logs "$1" 2>&1; }
count_in_log() { logs "$1" | grep -c -- "$2" || true; }
log_has_at_least() { [ "$(count_in_log "$1" "$2")" -ge "$3" ]; }
rows() { "$python" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["rows"]))' "$work/leaderboard.json"; }
rows_at_least() { [ -f "$work/leaderboard.json" ] && [ "$(rows)" -ge "$1" ]; }

say "building the image with $engine"
"$engine" build "${build_args[@]}" . >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log"; die "the image did not build"; }

port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# Orchestrators take 0.5 s a job: a cycle lasts long enough to be stopped in the middle.
"$python" -m ai_job_tester.sandbox serve --config-out "$work/config.json" --webhook-port "$port" \
  --latency 0.5 --live --transcoding --no-secret --state-file "$work/leaderboard.json" >"$work/sim.log" 2>&1 &
sim_pid=$!
wait_for 30 "simulated network" test -s "$work/config.json"

# The state volume, with a root-owned lock such as an older image or a root one-off left.
mkdir -p "$work/state"
echo 1 >"$work/state/lock"
chmod 644 "$work/state/lock"
volumes=(-v "$work/config.json:/etc/smoke/config.json:ro" -v "$work/state:/var/lib/ai-job-tester")
env_args=(-e CONFIG_FILE=/etc/smoke/config.json -e "METRICS_SECRET=$secret")

# --- One-off commands. ----------------------------------------------------------------------------
say "one-off commands"
uid="$("$engine" run --rm --network=host "${volumes[@]}" "${env_args[@]}" "$image" id -u)"
[ "$uid" = "$tester_uid" ] || die "a one-off command ran as uid $uid, not $tester_uid"
"$engine" run --rm --network=host "${volumes[@]}" "${env_args[@]}" "$image" touch /var/lib/ai-job-tester/one-off
[ "$(stat -c %u "$work/state/one-off")" = "$tester_uid" ] || die "a one-off command left a file not owned by $tester_uid"
[ "$(stat -c %u "$work/state/lock")" = "$tester_uid" ] || die "the root-owned lock was not given back to $tester_uid"
# The example config's endpoints do not answer: passing means CONFIG_FILE was read.
"$engine" run --rm --network=host "${volumes[@]}" "${env_args[@]}" "$image" \
  ai-job-tester validate --online >"$work/validate.log" 2>&1 || { cat "$work/validate.log"; die "validate --online failed"; }
"$engine" run --rm --network=host "${volumes[@]}" "${env_args[@]}" "$image" \
  ai-job-tester outbox >"$work/outbox.log" 2>&1 || { cat "$work/outbox.log"; die "outbox failed"; }
grep -q "/var/lib/ai-job-tester" "$work/outbox.log" || die "outbox did not use the state volume"

# --- A cycle from cron. ---------------------------------------------------------------------------
say "running from cron with CRONTAB_SCHEDULE='* * * * *' (the first tick is at most a minute away)"
containers+=("$name")
"$engine" run -d --name "$name" --network=host -e "CRONTAB_SCHEDULE=* * * * *" "${env_args[@]}" "${volumes[@]}" \
  "$image" >/dev/null
wait_for 150 "cycle summary in the container log" log_has_at_least "$name" "results to the leaderboard" 1
logs "$name" >"$work/cycle1.log"
grep -q "tick: cycle starting" "$work/cycle1.log" || die "no tick line in the log"
grep -q "Live video to video" "$work/cycle1.log" || die "no live video job in the log"
grep -q "syslog: CRON\[[0-9]*\]: (tester) CMD" "$work/cycle1.log" || die "cron's own lines are not in the log"
! grep -qE "Traceback|Permission denied|Error:" "$work/cycle1.log" || die "an error in the container log"
! grep -qF "$secret" "$work/cycle1.log" || die "the secret is in the container log"
wait_for 10 "rows at the leaderboard" rows_at_least 12
first_rows="$(rows)"
"$python" - "$work/leaderboard.json" <<'EOF' || die "no passing live video row at the leaderboard (ffmpeg in the image?)"
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
sys.exit(0 if any(r["pipeline"] == "Live video to video" and r["success_rate"] == 1 for r in rows) else 1)
EOF
"$python" - "$work/leaderboard.json" <<'EOF' || die "no passing transcoding row at the leaderboard (ffmpeg in the image?)"
import json, sys
rows = json.load(open(sys.argv[1]))["transcoding_rows"]
sys.exit(0 if any(r["success_rate"] == 1 and r["segments_received"] > 0 for r in rows) else 1)
EOF
not_tester="$(find "$work/state" ! -uid "$tester_uid")"
[ -z "$not_tester" ] || die "state files not owned by $tester_uid: $not_tester"
say "cycle 1: $first_rows rows at the leaderboard, state owned by uid $tester_uid"

# --- docker stop in the middle of the next cycle. -------------------------------------------------
wait_for 90 "second cycle" log_has_at_least "$name" "job 2/" 2
stop_start=$(date +%s%N)
"$engine" stop -t 10 "$name" >/dev/null
stop_ms=$((($(date +%s%N) - stop_start) / 1000000))
code="$("$engine" inspect "$name" --format '{{.State.ExitCode}}')"
logs "$name" >"$work/stop.log"
[ "$code" = 143 ] || die "exit code $code after stop, not 143"
[ "$stop_ms" -lt 9000 ] || die "stop took ${stop_ms} ms; the grace period is 10 s"
grep -q "interrupted by SIGTERM" "$work/stop.log" || die "no partial summary after stop"
grep -q "entrypoint: stopped" "$work/stop.log" || die "the entrypoint did not stop cleanly"
wait_for 10 "the interrupted cycle's rows" rows_at_least $((first_rows + 1))
say "stop mid-cycle: exit 143 after ${stop_ms} ms, partial summary logged, $(($(rows) - first_rows)) more rows"

# --- docker stop of an idle container. ------------------------------------------------------------
idle="$name-idle"
containers+=("$idle")
"$engine" run -d --name "$idle" --network=host "${env_args[@]}" "${volumes[@]}" "$image" >/dev/null
wait_for 30 "idle container start" log_has_at_least "$idle" "cron runs in the foreground" 1
stop_start=$(date +%s%N)
"$engine" stop -t 10 "$idle" >/dev/null
stop_ms=$((($(date +%s%N) - stop_start) / 1000000))
code="$("$engine" inspect "$idle" --format '{{.State.ExitCode}}')"
[ "$code" = 143 ] || die "idle container: exit code $code after stop, not 143"
[ "$stop_ms" -lt 3000 ] || die "idle container: stop took ${stop_ms} ms"
say "idle stop: exit 143 after ${stop_ms} ms"

say "passed in $(($(date +%s) - started)) s"
