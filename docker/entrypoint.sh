#!/usr/bin/env bash
# Entrypoint of the ai-job-tester image.
#   (no arguments) or "schedule": install the cron schedule and run cron in the foreground
#   anything else: run it, e.g. `docker run IMAGE ai-job-tester validate --online`
set -euo pipefail

if [ "$#" -gt 0 ] && [ "$1" != "schedule" ]; then
  exec "$@"
fi

schedule="${CRONTAB_SCHEDULE:-0 */2 * * *}"
config="${CONFIG_FILE:-/app/configs/config.json}"
user="${TESTER_USER:-tester}"
template="${CRONTAB_TEMPLATE:-/app/crontab}"
user_home="$(getent passwd "$user" | cut -d: -f6)"
env_file="${TESTER_ENV_FILE:-${user_home}/.ai-job-tester.env}"
log_pipe="${TESTER_LOG_PIPE:-/run/ai-job-tester/log}"

fail() {
  echo "entrypoint: $*" >&2
  exit 2
}

# A schedule is five fields, or one of cron's @words.
read -r -a fields <<<"$schedule"
if [[ "$schedule" != @* ]] && [ "${#fields[@]}" -ne 5 ]; then
  fail "CRONTAB_SCHEDULE must have five fields (minute hour day month weekday), got: $schedule"
fi
[ -r "$template" ] || fail "no crontab template at $template"

# Cron starts jobs with an empty environment: hand the container's over in a file that only
# the tester user can read, so secrets never land in a world-readable place.
umask 077
{
  export -p | grep -Ev '^declare -x (HOME|PWD|OLDPWD|SHLVL|HOSTNAME|TERM|_)='
  printf 'export AI_JOB_TESTER_CONFIG=%q\n' "$config"
} >"$env_file"
chown "$user" "$env_file"
chmod 600 "$env_file"

# The job writes to a pipe; this forwarder copies it to the container's log. It holds the
# pipe open for writing too, so that it never sees end-of-file between two jobs.
mkdir -p "$(dirname "$log_pipe")"
rm -f "$log_pipe"
mkfifo -m 600 "$log_pipe"
chown "$user" "$log_pipe"
exec 3<>"$log_pipe"
cat <&3 &

{
  printf 'AI_JOB_TESTER_ENV=%s\n' "$env_file"
  printf 'AI_JOB_TESTER_LOG=%s\n' "$log_pipe"
  awk -v schedule="$schedule" '
    /^[[:space:]]*(#|$)/ || /^[A-Za-z_][A-Za-z0-9_]*=/ { print; next }
    {
      if (substr($1, 1, 1) == "@") sub(/^[^ \t]+[ \t]+/, schedule " ")
      else sub(/^[^ \t]+[ \t]+[^ \t]+[ \t]+[^ \t]+[ \t]+[^ \t]+[ \t]+[^ \t]+[ \t]+/, schedule " ")
      print
    }
  ' "$template"
} | crontab -u "$user" -

echo "entrypoint: cycles scheduled '$schedule' with $config; cron runs in the foreground"
exec cron -f
