#!/usr/bin/env bash
# Entrypoint of the ai-job-tester image. It stays PID 1.
#   (no arguments) or "schedule": install the schedule for the tester user, run cron as a child,
#     forward every tick's output to the container's log; on SIGTERM/SIGINT stop the cycle
#     under way (it prints its partial summary), stop cron, exit 143/130.
#   anything else, e.g. `docker run IMAGE ai-job-tester validate --online`: run it as the
#     tester user with AI_JOB_TESTER_CONFIG="$CONFIG_FILE".
# Both first give the state directory back to the tester user (an older image, or a one-off
# command run as root, may have left root-owned files there).
set -euo pipefail
umask 022

config="${CONFIG_FILE:-/app/configs/config.json}"
user="${TESTER_USER:-tester}"
state_dir="${TESTER_STATE_DIR:-/var/lib/ai-job-tester}"
run_dir="${TESTER_RUN_DIR:-/run/ai-job-tester}"
template="${CRONTAB_TEMPLATE:-/app/crontab}"
grace="${TESTER_STOP_GRACE:-8}"   # seconds a cycle gets to stop; docker stop's own is 10
syslog_socket="${TESTER_SYSLOG_SOCKET:-/dev/log}"
syslog_forwarder="${TESTER_SYSLOG_FORWARDER:-/usr/local/lib/ai-job-tester/syslog.py}"

say() { echo "entrypoint: $*" >&2; }
fail() {
  say "$*"
  exit 2
}

uid="$(id -u "$user" 2>/dev/null)" || fail "no user $user in this image"
gid="$(id -g "$user")"
user_home="$(getent passwd "$user" | cut -d: -f6)"
env_file="${TESTER_ENV_FILE:-${user_home}/.ai-job-tester.env}"
log_pipe="$run_dir/log"
pid_file="$run_dir/cycle.pid"
export AI_JOB_TESTER_CONFIG="${AI_JOB_TESTER_CONFIG:-$config}"

# Rows, the lock and the rotation must stay the tester's: give back whatever is not.
reclaim_state() {
  [ "$(id -u)" = 0 ] || return 0
  mkdir -p "$state_dir" 2>/dev/null || true
  if ! find "$state_dir" -xdev ! -user "$uid" -exec chown -h "$uid:$gid" {} + 2>/dev/null; then
    say "warning: cannot give $state_dir back to $user (read-only?); cycles may fail to use it"
  fi
}

# --- One-off command: run it as the tester user. ----------------------------------------------
if [ "$#" -gt 0 ] && [ "$1" != "schedule" ]; then
  if [ "$(id -u)" != 0 ] || [ "$uid" = 0 ]; then
    exec "$@"   # started with --user: already unprivileged
  fi
  reclaim_state
  export HOME="$user_home" USER="$user" LOGNAME="$user"
  exec setpriv --reuid="$uid" --regid="$gid" --init-groups -- "$@"
fi

# --- The schedule. ----------------------------------------------------------------------------
# shellcheck disable=SC2329  # invoked by stop
cycle_running() { [ -e "$pid_file" ] && ! flock -n "$pid_file" true; }

# shellcheck disable=SC2329  # invoked by the traps below
stop() {
  local signal="$1" code="$2" pid
  trap '' TERM INT
  [ -z "$cron_pid" ] || kill -TERM "$cron_pid" 2>/dev/null || true   # no new tick from now on
  if cycle_running; then
    pid="$(cat "$pid_file")"
    say "SIG$signal: stopping the cycle under way (pid $pid), up to ${grace} s"
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    if ! flock -w "$grace" "$pid_file" true; then
      say "the cycle did not stop within ${grace} s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  [ -z "$cron_pid" ] || wait "$cron_pid" 2>/dev/null || true
  if [ -n "$syslog_pid" ]; then
    kill -TERM "$syslog_pid" 2>/dev/null || true
    wait "$syslog_pid" 2>/dev/null || true
  fi
  # The forwarder ends once the last writer is gone, so every line reaches the log; a writer
  # left behind (it should not be) gets two seconds.
  exec 3>&-   # closing an fd that was never opened is no error
  if [ -n "$forwarder" ]; then
    for _ in {1..20}; do
      kill -0 "$forwarder" 2>/dev/null || break
      sleep 0.1
    done
    kill "$forwarder" 2>/dev/null || true
  fi
  say "stopped"
  exit "$code"
}

# The traps come first: a shell that is PID 1 ignores a signal it has no handler for, so a
# `docker stop` during the set-up below would otherwise wait out the grace period and SIGKILL.
cron_pid="" syslog_pid="" forwarder=""
trap 'stop TERM 143' TERM
trap 'stop INT 130' INT
schedule="${CRONTAB_SCHEDULE:-0 */2 * * *}"
if [ "$(id -u)" != 0 ] && [ "$(id -u)" != "$uid" ]; then
  fail "the schedule needs root to start cron (every cycle runs as $user); do not set --user"
fi

# A schedule is five fields, or one of cron's @words.
read -r -a fields <<<"$schedule"
if [[ "$schedule" != @* ]] && [ "${#fields[@]}" -ne 5 ]; then
  fail "CRONTAB_SCHEDULE must have five fields (minute hour day month weekday), got: $schedule"
fi
[ -r "$template" ] || fail "no crontab template at $template"

reclaim_state

# Cron starts jobs with an empty environment: hand the container's over in a file that only
# the tester user can read, so secrets never land in a world-readable place.
(
  umask 077
  for name in $(compgen -e); do
    case "$name" in HOME | PWD | OLDPWD | SHLVL | HOSTNAME | TERM | _ | USER | LOGNAME) continue ;; esac
    printf 'export %s=%q\n' "$name" "${!name}"
  done >"$env_file"
)
chown "$uid:$gid" "$env_file"
chmod 600 "$env_file"

# The tick writes to a pipe owned by the tester user; this forwarder copies it to the
# container's log. The entrypoint holds the pipe open too (fd 3), so the forwarder never sees
# end-of-file between two ticks; at the end it lets go and waits for the last lines.
mkdir -p "$run_dir"
chmod 755 "$run_dir"
rm -f "$log_pipe"
mkfifo -m 600 "$log_pipe"
chown "$uid:$gid" "$log_pipe"
# The tick holds a lock on this file and writes its pid in it while a cycle runs.
: >"$pid_file"
chown "$uid:$gid" "$pid_file"
chmod 644 "$pid_file"
cat "$log_pipe" &
forwarder=$!
exec 3<>"$log_pipe"

{
  printf 'AI_JOB_TESTER_ENV=%s\n' "$env_file"
  printf 'AI_JOB_TESTER_LOG=%s\n' "$log_pipe"
  printf 'AI_JOB_TESTER_PIDFILE=%s\n' "$pid_file"
  awk -v schedule="$schedule" '
    /^[[:space:]]*(#|$)/ || /^[A-Za-z_][A-Za-z0-9_]*=/ { print; next }
    {
      if (substr($1, 1, 1) == "@") sub(/^[^ \t]+[ \t]+/, schedule " ")
      else sub(/^[^ \t]+[ \t]+[^ \t]+[ \t]+[^ \t]+[ \t]+[^ \t]+[ \t]+[^ \t]+[ \t]+/, schedule " ")
      print
    }
  ' "$template"
} | crontab -u "$user" -

say "cycles scheduled '$schedule' as $user with $AI_JOB_TESTER_CONFIG; cron runs in the foreground"
# No syslog daemon in the image: cron's own lines (tick starts, failed ticks, PAM or crontab
# errors that stop a tick before it runs) go to the container's log through this forwarder.
python3 "$syslog_forwarder" "$syslog_socket" &
syslog_pid=$!
for _ in {1..50}; do
  [ -S "$syslog_socket" ] && break
  sleep 0.1
done
[ -S "$syslog_socket" ] || say "warning: no syslog socket at $syslog_socket; cron's own messages are lost"

# -f: in the foreground, as our child; -L 5: log the start of every tick and every failed one.
cron -f -L 5 3>&- &
cron_pid=$!
status=0
wait "$cron_pid" || status=$?
say "cron exited with status $status"
exit $((status == 0 ? 1 : status))
