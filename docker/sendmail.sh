#!/usr/bin/env bash
# /usr/sbin/sendmail of the image. cron "mails" what a job printed that its redirection did not
# catch (the log pipe could not be opened, the tick script is missing, ...). There is no MTA
# in the image: this puts the message in the container's log instead, where it is seen.
# cron runs it with its own stderr, the container's log. Headers are dropped but the subject,
# which names the job.
set -uo pipefail
in_headers=1
while IFS= read -r line || [ -n "$line" ]; do
  if [ "$in_headers" = 1 ]; then
    case "$line" in
      "") in_headers=0 ;;
      Subject:*) echo "cron: ${line#Subject: }" >&2 ;;
    esac
    continue
  fi
  echo "cron: $line" >&2
done
exit 0
