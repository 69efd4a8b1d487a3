#!/usr/bin/env bash
# One schedule tick, run by cron as the tester user (installed as /usr/local/bin/ai-job-tester-tick).
# The crontab sends this script's output to the log pipe; whatever fails before that
# redirection reaches the container's log by cron's mail (see docker/sendmail.sh).
#   AI_JOB_TESTER_ENV      the container's environment, written by the entrypoint (mode 0600)
#   AI_JOB_TESTER_PIDFILE  locked and holding the cycle's pid while it runs, so that the
#                          entrypoint can hand it SIGTERM on `docker stop`
set -uo pipefail

say() { echo "$(date -u +%Y-%m-%dT%H:%M:%S%z) tick: $*"; }

# shellcheck source=/dev/null  # written by the entrypoint at start
if ! . "${AI_JOB_TESTER_ENV:?the crontab sets AI_JOB_TESTER_ENV}"; then
  say "cannot read the environment file $AI_JOB_TESTER_ENV; no cycle"
  exit 1
fi
pid_file="${AI_JOB_TESTER_PIDFILE:?the crontab sets AI_JOB_TESTER_PIDFILE}"
if ! exec 9<>"$pid_file"; then
  say "cannot open $pid_file; no cycle"
  exit 1
fi
if ! flock -n 9; then
  say "the previous cycle (pid $(cat "$pid_file")) is still running; this tick does nothing"
  exit 0
fi
echo "$$" >"$pid_file"
say "cycle starting (pid $$) with $AI_JOB_TESTER_CONFIG"
# exec: the cycle keeps this pid and the lock (fd 9) until it ends.
exec ai-job-tester run
